import { isoAfter } from '../../lib/tokens'
import { ApiError } from '../../plugins/errors'
import type { Counter } from '../../lib/metrics'
import type { ThrottleStore } from './store'

export interface ThrottlePolicy {
  maxFailures: number
  maxFailuresPerAddress: number
  /** Seconds: how long failures are counted, and how long a lock-out lasts. */
  window: number
}

/**
 * Brute-force protection for logins. Failures count per username (any case, existing or not, so a
 * lock-out reveals nothing) and per client address; a locked key answers 429 whatever the password.
 */
export class LoginThrottle {
  constructor(
    private readonly store: ThrottleStore,
    private readonly policy: ThrottlePolicy,
    private readonly counters: { failures: Counter; lockouts: Counter },
  ) {}

  async assertAllowed(username: string, address: string): Promise<void> {
    const now = Date.now()
    const lockedUntil = await this.store.lockedUntil([accountKey(username), addressKey(address)], new Date(now).toISOString())
    if (lockedUntil === undefined) return
    const retryAfter = Math.max(1, Math.ceil((Date.parse(lockedUntil) - now) / 1000))
    throw new ApiError(429, 'rate_limited', 'Too many failed logins; try again later', undefined, { 'Retry-After': String(retryAfter) })
  }

  async recordFailure(username: string, address: string): Promise<void> {
    const now = Date.now()
    const windowStartedAfter = isoAfter(-this.policy.window, now)
    this.counters.failures.inc()
    const limits = [
      { kind: 'account', key: accountKey(username), limit: this.policy.maxFailures },
      { kind: 'address', key: addressKey(address), limit: this.policy.maxFailuresPerAddress },
    ]
    for (const { kind, key, limit } of limits) {
      const failures = await this.store.recordFailure(key, new Date(now).toISOString(), windowStartedAfter)
      if (failures >= limit) {
        await this.store.lock(key, isoAfter(this.policy.window, now))
        this.counters.lockouts.inc({ kind })
      }
    }
  }

  async recordSuccess(username: string): Promise<void> {
    await this.store.reset(accountKey(username))
  }

  /** Forgets counters that can no longer count or lock: their window is over and so is any lock-out. */
  purgeStale(now = Date.now()): Promise<number> {
    return this.store.deleteStale(isoAfter(-this.policy.window, now), new Date(now).toISOString())
  }
}

const accountKey = (username: string) => `account:${username.toLowerCase()}`
const addressKey = (address: string) => `address:${address}`
