/**
 * Lets whatever waits on the event loop (requests, timers, socket reads) run before the next batch.
 * bun:sqlite answers synchronously, so awaiting the store alone never lets them in: a loop over
 * rows a user can multiply calls this between its batches.
 */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * Runs a deletion of at most `batchSize` rows until one deletes fewer, so that a large backlog never
 * holds the store for long (requests run between batches). Answers how many rows went in all.
 */
export async function deleteInBatches(deleteBatch: (batchSize: number) => Promise<number>, batchSize: number): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = await deleteBatch(batchSize)
    total += deleted
    if (deleted < batchSize) return total
    await nextTurn()
  }
}
