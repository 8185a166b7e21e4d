import type { Counter } from '../../lib/metrics'
import type { LockoutKind } from '../../metrics'
import { isoAfter } from '../../lib/clock'
import { rateLimited } from '../../shared/errors'
import type { ThrottleCounter, ThrottleStore } from './throttle-store'

export interface ThrottlePolicy {
  maxFailures: number
  maxFailuresPerAddress: number
  /** Seconds: how long failures are counted, and how long a lock-out lasts. */
  window: number
}

/** One password check that holds a slot of each of its counters until it is settled. */
export interface Attempt {
  /** The password was wrong: the slots stay taken, as failures. */
  failed(): Promise<void>
  /** The password was right: the account's counter starts afresh, and the address gets its slot back. */
  succeeded(): Promise<void>
  /** The password could not be checked (the service is busy): every slot is given back. */
  cancelled(): Promise<void>
}

interface Slot {
  kind: LockoutKind
  key: string
  limit: number
  /** What a right password does to this counter: start it afresh, or give back the one slot. */
  onSuccess: 'reset' | 'release'
}

/**
 * Brute-force protection for password checks. Each check reserves a slot of its counters before the
 * password is verified, so however many arrive at once, no more than the limit are ever evaluated;
 * the slot that reaches the limit locks the counter there and then, and a locked counter answers 429
 * whatever the password. Login failures count per username (any case, existing or not, so a lock-out
 * reveals nothing) and per client address; password changes per account.
 */
export class LoginThrottle {
  constructor(
    private readonly store: ThrottleStore,
    private readonly policy: ThrottlePolicy,
    private readonly counters: { failures: Counter; lockouts: Counter },
  ) {}

  reserveLogin(username: string, address: string): Promise<Attempt> {
    const slots: Slot[] = [
      { kind: 'account', key: `account:${username.toLowerCase()}`, limit: this.policy.maxFailures, onSuccess: 'reset' },
      { kind: 'address', key: `address:${address}`, limit: this.policy.maxFailuresPerAddress, onSuccess: 'release' },
    ]
    return this.#reserve(slots, this.counters.failures)
  }

  /** For change-password: guesses of the current password, with one access token, per account. */
  reservePasswordCheck(userId: string): Promise<Attempt> {
    return this.#reserve([{ kind: 'password_change', key: `password-change:${userId}`, limit: this.policy.maxFailures, onSuccess: 'reset' }])
  }

  /** Forgets counters that can no longer count or lock: their window is over and so is any lock-out. */
  purgeStale(now = Date.now()): Promise<number> {
    return this.store.deleteStale(isoAfter(-this.policy.window, now), new Date(now).toISOString())
  }

  async #reserve(slots: Slot[], failures?: Counter): Promise<Attempt> {
    const clock = Date.now()
    const now = new Date(clock).toISOString()
    const windowStartedAfter = isoAfter(-this.policy.window, clock)
    const lockUntil = isoAfter(this.policy.window, clock)
    const outcome = await this.store.update<{ lockedUntil: string } | { reserved: ThrottleCounter[] }>(
      slots.map((slot) => slot.key),
      (stored) => {
        const current = slots.map(({ key }) => {
          const counter = stored.get(key)
          const live = counter && ((counter.locked_until ?? '') > now || counter.window_started_at > windowStartedAfter)
          return live ? counter : { throttle_key: key, failures: 0, window_started_at: now, locked_until: null }
        })
        const lockedUntil = current.map((counter) => counter.locked_until ?? '').reduce((latest, until) => (until > latest ? until : latest), '')
        if (lockedUntil > now) return { outcome: { lockedUntil }, write: [] }
        const reserved = current.map(
          (counter, index): ThrottleCounter => ({
            ...counter,
            failures: counter.failures + 1,
            locked_until: counter.failures + 1 >= slots[index]!.limit ? lockUntil : null,
          }),
        )
        return { outcome: { reserved }, write: reserved }
      },
    )
    if ('lockedUntil' in outcome) {
      throw rateLimited('Too many failed attempts; try again later', (Date.parse(outcome.lockedUntil) - clock) / 1000)
    }
    const settle = (how: (slot: Slot) => Slot['onSuccess']) =>
      this.store.settle(outcome.reserved.map((counter, index) => ({ counter, limit: slots[index]!.limit, how: how(slots[index]!) })))
    return {
      failed: async () => {
        failures?.inc()
        outcome.reserved.forEach((counter, index) => {
          if (counter.locked_until !== null) this.counters.lockouts.inc({ kind: slots[index]!.kind })
        })
      },
      succeeded: () => settle((slot) => slot.onSuccess),
      cancelled: () => settle(() => 'release'),
    }
  }
}
