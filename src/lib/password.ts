import { ApiError, rateLimited, requestTimeout, unavailable } from '../shared/errors'

export interface PasswordPolicy {
  memoryCost: number
  timeCost: number
  concurrency: number
  /** Checks allowed to wait for a free slot; past it, 503. */
  queueLimit: number
  /** Checks one client may have running or waiting at once; past it, 429. */
  queueLimitPerClient: number
}

/** Who a password check is for: the client's address, and the request's signal (aborted when it goes away). */
export interface Caller {
  address: string
  signal?: AbortSignal
}

/** Start-up, seeding and other work no client asked for. */
export const INTERNAL_CALLER: Caller = { address: 'internal' }

/** Starts a waiting check. */
type Waiter = () => void

/**
 * argon2id through Bun.password, with at most `concurrency` hashes in flight: each one holds
 * `memoryCost` KiB, so an unbounded burst of logins would be an unbounded burst of memory. Checks
 * beyond that wait in a bounded queue served round-robin by client, so that one address sending a
 * hundred logins delays another's by about one hash, not a hundred.
 */
export class PasswordHasher {
  #running = 0
  #peak = 0
  #waitingCount = 0
  /** Waiting checks by client, in the order the clients are served next. */
  readonly #waiting = new Map<string, Waiter[]>()
  /** Checks running or waiting, by client. */
  readonly #perClient = new Map<string, number>()
  #averageSeconds = 0.1
  readonly #dummyHash: string

  constructor(private readonly policy: PasswordPolicy) {
    // A well-formed hash of nothing, with the configured cost: checking a password against it costs
    // what a real check costs, from the very first login (no hash is computed to make it).
    this.#dummyHash = `$argon2id$v=19$m=${policy.memoryCost},t=${policy.timeCost},p=1$${randomBase64(32)}$${randomBase64(32)}`
  }

  hash(password: string, caller: Caller = INTERNAL_CALLER): Promise<string> {
    const { memoryCost, timeCost } = this.policy
    return this.#limited(caller, () => Bun.password.hash(password, { algorithm: 'argon2id', memoryCost, timeCost }))
  }

  verify(password: string, hash: string, caller: Caller = INTERNAL_CALLER): Promise<boolean> {
    return this.#limited(caller, () => Bun.password.verify(password, hash, 'argon2id'))
  }

  /** Spends the same work as a real verification, so an unknown username answers in the same time. */
  async verifyNothing(password: string, caller: Caller = INTERNAL_CALLER): Promise<false> {
    await this.verify(password, this.#dummyHash, caller)
    return false
  }

  /** The most hashes that ever ran at once (for tests and metrics). */
  get peakConcurrency(): number {
    return this.#peak
  }

  get running(): number {
    return this.#running
  }

  get waiting(): number {
    return this.#waitingCount
  }

  async #limited<Result>(caller: Caller, work: () => Promise<Result>): Promise<Result> {
    const client = caller.address
    const held = this.#perClient.get(client) ?? 0
    if (client !== INTERNAL_CALLER.address && held >= this.policy.queueLimitPerClient)
      throw rateLimited('Too many password checks from this client at once; slow down', this.#drainSeconds())
    if (this.#running >= this.policy.concurrency && this.#waitingCount >= this.policy.queueLimit)
      throw unavailable('The service is busy checking passwords; try again shortly', this.#drainSeconds())
    this.#perClient.set(client, held + 1)
    try {
      if (this.#running < this.policy.concurrency) this.#running++
      else await this.#queue(client, caller.signal)
      this.#peak = Math.max(this.#peak, this.#running)
      const started = performance.now()
      try {
        return await work()
      } finally {
        this.#averageSeconds = 0.8 * this.#averageSeconds + 0.2 * ((performance.now() - started) / 1000)
        this.#handOver()
      }
    } finally {
      const left = (this.#perClient.get(client) ?? 1) - 1
      if (left === 0) this.#perClient.delete(client)
      else this.#perClient.set(client, left)
    }
  }

  /** Waits for a slot, which the check that frees it hands over (so #running does not change). */
  #queue(client: string, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(clientGone())
      const onAbort = () => {
        this.#remove(client, waiter)
        reject(clientGone())
      }
      const waiter: Waiter = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const line = this.#waiting.get(client)
      if (line) line.push(waiter)
      else this.#waiting.set(client, [waiter])
      this.#waitingCount++
    })
  }

  /** The slot goes to the first waiter of the next client in turn, who then moves to the back. */
  #handOver(): void {
    const next = this.#waiting.entries().next()
    if (next.done) {
      this.#running--
      return
    }
    const [client, line] = next.value
    const waiter = line.shift()!
    this.#waiting.delete(client)
    if (line.length > 0) this.#waiting.set(client, line)
    this.#waitingCount--
    waiter()
  }

  #remove(client: string, waiter: Waiter): void {
    const line = this.#waiting.get(client)
    const index = line?.indexOf(waiter) ?? -1
    if (!line || index < 0) return
    line.splice(index, 1)
    if (line.length === 0) this.#waiting.delete(client)
    this.#waitingCount--
  }

  /** Seconds until the queue ahead has likely drained. */
  #drainSeconds(): number {
    return ((this.#waitingCount + this.#running) / this.policy.concurrency) * this.#averageSeconds
  }
}

function clientGone(): ApiError {
  return requestTimeout('The client went away before its password was checked')
}

function randomBase64(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('base64').replace(/=+$/, '')
}
