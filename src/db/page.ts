import type { Queryable, SqlValue } from './database'

export interface PageQuery {
  /** The ordered SELECT of the rows, without LIMIT and OFFSET. */
  rows: string
  /** A SELECT of one row with a `total` column: how many rows the filters match. */
  count: string
  params: SqlValue[]
}

/**
 * One page of rows and the total the filters match. A page that ends before `limit` is the last
 * one, so its total is known without counting; only a full page (or an empty one past the end)
 * runs the count.
 */
export async function readPage<Row>(q: Queryable, query: PageQuery, limit: number, offset: number): Promise<{ rows: Row[]; total: number }> {
  const next = query.params.length + 1
  const rows = await q.all<Row>(`${query.rows} LIMIT $${next} OFFSET $${next + 1}`, [...query.params, limit, offset])
  if (rows.length < limit && (rows.length > 0 || offset === 0)) return { rows, total: offset + rows.length }
  const counted = await q.get<{ total: number }>(query.count, query.params)
  return { rows, total: counted?.total ?? 0 }
}
