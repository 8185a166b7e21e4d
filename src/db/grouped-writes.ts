interface Waiter<Item, Result> {
  item: Item
  resolve(result: Result): void
  reject(reason: unknown): void
}

export interface GroupLimits {
  /** Items written in one group at most. */
  maxItems: number
  /** Items waiting for one key at most; past it, `full()` refuses more. */
  maxWaiting: number
  full(): Error
}

/**
 * Writes by key, one transaction at a time for each key: the first item goes at once, and what is
 * asked for while its key's write is under way waits, to go together in the next one (at most
 * `maxItems`, first come first written). Writes that pass one lock one after another (a room's chat
 * messages) then pay for a transaction, its round trips and its commit once per group instead of
 * once per item. `writeAll` answers each item's outcome, in order; if it throws, every item of the
 * group fails with it. It must not wait for a write of its own key, which would never start.
 */
export class GroupedWrites<Key, Item, Result> {
  /** The items waiting for each key whose write is under way. */
  readonly #waiting = new Map<Key, Array<Waiter<Item, Result>>>()

  constructor(
    private readonly writeAll: (key: Key, items: Item[]) => Promise<Array<PromiseSettledResult<Result>>>,
    private readonly limits: GroupLimits,
  ) {}

  write(key: Key, item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      const waiting = this.#waiting.get(key)
      if (!waiting) {
        this.#waiting.set(key, [])
        return void this.#writeFrom(key, [{ item, resolve, reject }])
      }
      if (waiting.length >= this.limits.maxWaiting) return reject(this.limits.full())
      waiting.push({ item, resolve, reject })
    })
  }

  async #writeFrom(key: Key, group: Array<Waiter<Item, Result>>): Promise<void> {
    for (;;) {
      try {
        const outcomes = await this.writeAll(
          key,
          group.map((waiter) => waiter.item),
        )
        if (outcomes.length !== group.length) throw new Error(`a group of ${group.length} writes was answered ${outcomes.length} outcomes`)
        group.forEach((waiter, index) => {
          const outcome = outcomes[index]!
          if (outcome.status === 'fulfilled') waiter.resolve(outcome.value)
          else waiter.reject(outcome.reason)
        })
      } catch (error) {
        for (const waiter of group) waiter.reject(error)
      }
      const waiting = this.#waiting.get(key)!
      if (waiting.length === 0) return void this.#waiting.delete(key)
      group = waiting.splice(0, this.limits.maxItems)
    }
  }
}
