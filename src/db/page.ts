import type { Queryable, SqlValue } from './database'

export interface PageQuery {
  /**
   * The ordered SELECT of the rows, without LIMIT and OFFSET; or, where the page must be taken
   * before the rest of the query runs (joins worth doing for its rows only), a function that
   * places the given `LIMIT … OFFSET …` itself.
   */
  rows: string | ((page: string) => string)
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
  const page = `LIMIT $${next} OFFSET $${next + 1}`
  const rows = await q.all<Row>(typeof query.rows === 'string' ? `${query.rows} ${page}` : query.rows(page), [...query.params, limit, offset])
  if (rows.length < limit && (rows.length > 0 || offset === 0)) return { rows, total: offset + rows.length }
  const counted = await q.get<{ total: number }>(query.count, query.params)
  return { rows, total: counted?.total ?? 0 }
}

/** Bounds of a page by number: after `after`, before `before` (both exclusive), `limit` rows. */
export interface SeqRange {
  before?: number
  after?: number
  limit: number
}

/**
 * Up to `limit` rows of `select` (whose WHERE names `key` as $1) between the numbers `after` and
 * `before` in its `seq` column, newest first: the newest of them, or with `after` the oldest (a
 * reader catching up goes forward). `more` says whether the range holds others past the page.
 * Numbers never tie, so pages are stable however many rows share a timestamp.
 */
export async function pageBySeq<Row>(q: Queryable, select: string, key: string, range: SeqRange): Promise<{ rows: Row[]; more: boolean }> {
  const forward = range.after !== undefined
  // Only the bounds given: a sentinel such as 2^53 - 1 against an INTEGER column keeps PostgreSQL off the index.
  const params: SqlValue[] = [key]
  let where = ''
  if (range.after !== undefined) where += ` AND seq > $${params.push(range.after)}`
  if (range.before !== undefined) where += ` AND seq < $${params.push(range.before)}`
  const found = await q.all<Row>(`${select}${where} ORDER BY seq ${forward ? 'ASC' : 'DESC'} LIMIT $${params.push(range.limit + 1)}`, params)
  const rows = found.slice(0, range.limit)
  return { rows: forward ? rows.reverse() : rows, more: found.length > range.limit }
}
