interface Waiter<Value> {
  resolve(value: Value | undefined): void
  reject(error: unknown): void
}

/**
 * Reads by key, gathering the keys asked for during one turn of the event loop into one read of
 * at most `maxKeys` (the rest go in the next turn): thousands of sockets resuming at once read the
 * store a few hundred rows to a statement, not a statement each. A key is always read after it was
 * asked for, never answered from a read begun earlier, so an answer is as fresh as a read of its
 * own would have been. For reads outside a transaction only.
 */
export class BatchedReads<Key, Value> {
  #pending = new Map<Key, Array<Waiter<Value>>>()
  #scheduled = false

  constructor(
    private readonly readAll: (keys: Key[]) => Promise<Map<Key, Value>>,
    private readonly maxKeys = 200,
  ) {}

  read(key: Key): Promise<Value | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.#pending.get(key)
      if (waiting) waiting.push({ resolve, reject })
      else this.#pending.set(key, [{ resolve, reject }])
      this.#schedule()
    })
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => this.#flush())
  }

  #flush(): void {
    this.#scheduled = false
    const batch = new Map<Key, Array<Waiter<Value>>>()
    for (const [key, waiting] of this.#pending) {
      if (batch.size === this.maxKeys) break
      batch.set(key, waiting)
    }
    for (const key of batch.keys()) this.#pending.delete(key)
    if (this.#pending.size > 0) this.#schedule()
    this.readAll([...batch.keys()]).then(
      (values) => {
        for (const [key, waiting] of batch) for (const waiter of waiting) waiter.resolve(values.get(key))
      },
      (error) => {
        for (const waiting of batch.values()) for (const waiter of waiting) waiter.reject(error)
      },
    )
  }
}
