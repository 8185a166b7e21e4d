import { describe, expect, test } from 'bun:test'
import { GroupedWrites } from '../../src/db/grouped-writes'

// The queue behind a room's chat writes: who goes together, in what order, and what one failure costs the others.

/** A writer whose writes finish only when the test says so; it records each group it was given. */
function heldWriter(answer: (item: number) => PromiseSettledResult<string> = (item) => ({ status: 'fulfilled', value: `wrote ${item}` })) {
  const groups: Array<{ key: string; items: number[] }> = []
  const finishes: Array<(error?: Error) => void> = []
  const writes = new GroupedWrites<string, number, string>(
    (key, items) => {
      groups.push({ key, items })
      return new Promise((resolve, reject) => finishes.push((error) => (error ? reject(error) : resolve(items.map(answer)))))
    },
    { maxItems: 3, maxWaiting: 5, full: () => new Error('full') },
  )
  const finishNext = async (error?: Error) => {
    finishes.shift()!(error)
    await Bun.sleep(0)
  }
  return { writes, groups, finishNext }
}

describe('grouped writes', () => {
  test('the first goes at once and alone; those asked for meanwhile go together next, first come first written, at most maxItems a group', async () => {
    const { writes, groups, finishNext } = heldWriter()
    const answers = [1, 2, 3, 4, 5, 6].map((item) => writes.write('room', item))
    expect(groups).toEqual([{ key: 'room', items: [1] }])
    await finishNext()
    expect(groups.at(-1)).toEqual({ key: 'room', items: [2, 3, 4] })
    await finishNext()
    expect(groups.at(-1)).toEqual({ key: 'room', items: [5, 6] })
    await finishNext()
    expect(await Promise.all(answers)).toEqual(['wrote 1', 'wrote 2', 'wrote 3', 'wrote 4', 'wrote 5', 'wrote 6'])
    // Nothing is left waiting: the next write goes at once again.
    void writes.write('room', 7)
    expect(groups.at(-1)).toEqual({ key: 'room', items: [7] })
  })

  test('keys do not wait for each other', async () => {
    const { writes, groups } = heldWriter()
    void writes.write('room a', 1)
    void writes.write('room b', 2)
    expect(groups).toEqual([
      { key: 'room a', items: [1] },
      { key: 'room b', items: [2] },
    ])
  })

  test('an item refused fails alone; a group that throws fails only its own items, and the key goes on', async () => {
    const { writes, finishNext } = heldWriter((item) =>
      item === 3 ? { status: 'rejected', reason: new Error('not a player') } : { status: 'fulfilled', value: `wrote ${item}` },
    )
    const answers = [1, 2, 3, 4, 5].map((item) => writes.write('room', item).catch((error: Error) => error.message))
    await finishNext(new Error('store down'))
    await finishNext()
    await finishNext()
    expect(await Promise.all(answers)).toEqual(['store down', 'wrote 2', 'not a player', 'wrote 4', 'wrote 5'])
  })

  test('a writer that answers too few outcomes fails its group, not silently some of it', async () => {
    const writes = new GroupedWrites<string, number, string>(
      async (_, items) => items.slice(1).map((item) => ({ status: 'fulfilled' as const, value: `wrote ${item}` })),
      {
        maxItems: 10,
        maxWaiting: 10,
        full: () => new Error('full'),
      },
    )
    const answers = [1, 2, 3].map((item) => writes.write('room', item).catch((error: Error) => error.message))
    expect(await Promise.all(answers)).toEqual([
      'a group of 1 writes was answered 0 outcomes',
      'a group of 2 writes was answered 1 outcomes',
      'a group of 2 writes was answered 1 outcomes',
    ])
  })

  test('past maxWaiting a key refuses at once, and what waits already is still written', async () => {
    const { writes, finishNext } = heldWriter()
    const answers = Array.from({ length: 8 }, (_, item) => writes.write('room', item).catch((error: Error) => error.message))
    for (let group = 0; group < 3; group++) await finishNext()
    // One under way and five waiting: the seventh and eighth are refused.
    expect(await Promise.all(answers)).toEqual(['wrote 0', 'wrote 1', 'wrote 2', 'wrote 3', 'wrote 4', 'wrote 5', 'full', 'full'])
  })
})
