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
  }
}
