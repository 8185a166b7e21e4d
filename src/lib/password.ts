export interface PasswordPolicy {
  memoryCost: number
  timeCost: number
  concurrency: number
}

/**
 * argon2id through Bun.password, with at most `concurrency` hashes in flight: each one holds
 * `memoryCost` KiB, so an unbounded burst of logins would be an unbounded burst of memory.
 */
export class PasswordHasher {
  #running = 0
  #peak = 0
  readonly #queue: Array<() => void> = []
  #dummyHash: Promise<string> | undefined

  constructor(private readonly policy: PasswordPolicy) {}

  hash(password: string): Promise<string> {
    const { memoryCost, timeCost } = this.policy
    return this.#limited(() => Bun.password.hash(password, { algorithm: 'argon2id', memoryCost, timeCost }))
  }

  verify(password: string, hash: string): Promise<boolean> {
    return this.#limited(() => Bun.password.verify(password, hash, 'argon2id'))
  }

  /** Spends the same work as a real verification, so an unknown username answers in the same time. */
  async verifyNothing(password: string): Promise<false> {
    this.#dummyHash ??= this.hash(crypto.randomUUID())
    await this.verify(password, await this.#dummyHash)
    return false
  }

  /** The most hashes that ever ran at once (for tests and metrics). */
  get peakConcurrency(): number {
    return this.#peak
  }

  get running(): number {
    return this.#running
  }

  async #limited<Result>(work: () => Promise<Result>): Promise<Result> {
    if (this.#running >= this.policy.concurrency) await new Promise<void>((resolve) => this.#queue.push(resolve))
    else this.#running++
    this.#peak = Math.max(this.#peak, this.#running)
    try {
      return await work()
    } finally {
      const next = this.#queue.shift()
      if (next) next()
      else this.#running--
    }
  }
}
