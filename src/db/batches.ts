import type { Dialect } from './database'

/**
 * Lets whatever waits on the event loop (requests, timers, socket reads) run before the next batch.
 * bun:sqlite answers synchronously, so awaiting the store alone never lets them in: a loop over
 * rows a user can multiply calls this between its batches.
 */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * For a loop of steps a user can multiply (rows, chunks of a file): call the answer after each
 * step, and every `every` steps it lets the event loop take a turn.
 */
export const turnsEvery = (every: number) => {
  let steps = 0
  return (): Promise<void> | undefined => (++steps % every === 0 ? nextTurn() : undefined)
}

/**
 * Rows one statement of a batched deletion or update touches. Small enough that its write, and the
 * share of the write-ahead log checkpoint it brings, keep an SQLite commit to a few milliseconds
 * (at 1,000 rows a purge held the event loop some 35 ms at a time; at 250, under 15).
 */
export const BATCH_ROWS = 250

/**
 * Rows per batch on `db`. PostgreSQL answers off the event loop, so there a batch is bounded only
 * by how long it holds its rows' locks: bigger batches clear a backlog of hundreds of thousands of
 * rows in seconds instead of minutes of round trips.
 */
export const batchRows = (db: { dialect: Dialect }): number => (db.dialect === 'postgres' ? 5_000 : BATCH_ROWS)

/**
 * Runs a statement over at most `batchSize` rows (a deletion, an update) until one touches fewer,
 * so that a large backlog never holds the store for long: requests run between batches. Answers
 * how many rows it touched in all.
 */
export async function inBatches(batch: (batchSize: number) => Promise<number>, batchSize: number): Promise<number> {
  let total = 0
  for (;;) {
    const touched = await batch(batchSize)
    total += touched
    if (touched < batchSize) return total
    await nextTurn()
  }
}

/**
 * Walks rows in key order, `pageSize` at a time, each page read after the last key of the one
 * before (never an offset), with a turn of the event loop between pages: for a walk a user can
 * make long, such as the export of their data.
 */
export async function* inPages<Row, Key>(read: (after: Key, limit: number) => Promise<Row[]>, keyOf: (row: Row) => Key, first: Key, pageSize = 500): AsyncGenerator<Row[]> {
  for (let after = first; ; ) {
    const page = await read(after, pageSize)
    if (page.length > 0) yield page
    if (page.length < pageSize) return
    after = keyOf(page.at(-1)!)
    await nextTurn()
  }
}
