import type { Database, Transaction } from '../../db/database'

/** Takes the counters' locks in one order everywhere, so that two holders of the same keys cannot deadlock. */
async function lockKeys(tx: Transaction, keys: string[]): Promise<void> {
  for (const key of [...keys].sort()) await tx.lock(`throttle:${key}`)
}

/** A counter's state: failures in the window that began at `window_started_at`, and any lock-out. */
export interface ThrottleCounter {
  throttle_key: string
  failures: number
  window_started_at: string
  locked_until: string | null
}

/** Failed-attempt counters, in the store so that every instance shares them. */
export class ThrottleStore {
  constructor(private readonly db: Database) {}

  /**
   * Reads the counters of `keys` and writes what `decide` makes of them, in one transaction that
   * holds each key's lock: concurrent attempts on one key (on any instance) go one after the other.
   */
  async update<Outcome>(
    keys: string[],
    decide: (counters: Map<string, ThrottleCounter>) => { outcome: Outcome; write: ThrottleCounter[] },
  ): Promise<Outcome> {
    return this.db.transaction(async (tx) => {
      await lockKeys(tx, keys)
      const placeholders = keys.map((_, index) => `$${index + 1}`).join(', ')
      const rows = await tx.all<ThrottleCounter>(
        `SELECT throttle_key, failures, window_started_at, locked_until FROM login_throttle WHERE throttle_key IN (${placeholders})`,
        keys,
      )
      const { outcome, write } = decide(new Map(rows.map((row) => [row.throttle_key, { ...row, failures: Number(row.failures) }])))
      for (const counter of write)
        await tx.run(
          `INSERT INTO login_throttle (throttle_key, failures, window_started_at, locked_until) VALUES ($1, $2, $3, $4)
           ON CONFLICT (throttle_key) DO UPDATE SET failures = $2, window_started_at = $3, locked_until = $4`,
          [counter.throttle_key, counter.failures, counter.window_started_at, counter.locked_until],
        )
      return outcome
    })
  }

  /** Gives back one slot taken in `counter`'s window (a lock that slot started ends with it). */
  /**
   * Settles reserved slots in one transaction (one write to disk): a `reset` counter starts afresh,
   * a `release` one gives back the slot taken in its window (and a lock that slot started ends with it).
   */
  async settle(slots: Array<{ counter: ThrottleCounter; limit: number; how: 'reset' | 'release' }>): Promise<void> {
    await this.db.transaction(async (tx) => {
      // The locks reservations take: without them a reservation reading a counter, then writing it
      // back one higher, would undo a release made in between (seen on PostgreSQL under load).
      await lockKeys(tx, slots.map(({ counter }) => counter.throttle_key))
      for (const { counter, limit, how } of slots)
        if (how === 'reset') await tx.run('DELETE FROM login_throttle WHERE throttle_key = $1', [counter.throttle_key])
        else
          await tx.run(
            `UPDATE login_throttle SET failures = failures - 1, locked_until = CASE WHEN failures - 1 < $3 THEN NULL ELSE locked_until END
              WHERE throttle_key = $1 AND window_started_at = $2 AND failures > 0`,
            [counter.throttle_key, counter.window_started_at, limit],
          )
    })
  }

  /** Deletes counters whose window began before `windowStartedBefore` and that lock nobody out any more. */
  async deleteStale(windowStartedBefore: string, now: string): Promise<number> {
    return this.db.run('DELETE FROM login_throttle WHERE window_started_at <= $1 AND (locked_until IS NULL OR locked_until <= $2)', [
      windowStartedBefore,
      now,
    ])
  }
}
