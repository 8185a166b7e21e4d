import type { SqlValue } from './database'

/**
 * The placeholders of an IN list for `values`, numbered from `first`, and the values to bind to
 * them: padded with repeats of the last value to a power of two, so that lists of any length make
 * a few statements (a store prepares and keeps each distinct one, per connection), not one per
 * length. A repeat changes nothing an IN list answers.
 */
export function inList(values: SqlValue[], first = 1): { marks: string; params: SqlValue[] } {
  const params = [...values]
  while (params.length > 1 && (params.length & (params.length - 1)) !== 0) params.push(params.at(-1)!)
  return { marks: params.map((_, index) => `$${first + index}`).join(', '), params }
}

/** The placeholders of a VALUES list of `rows` (each a row's values, all of one length), numbered from 1, and the values to bind to them. */
export function valuesList(rows: SqlValue[][]): { marks: string; params: SqlValue[] } {
  let next = 1
  const marks = rows.map((row) => `(${row.map(() => `$${next++}`).join(', ')})`).join(', ')
  return { marks, params: rows.flat() }
}
