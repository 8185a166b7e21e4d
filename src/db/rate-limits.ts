import { isoAfter } from '../lib/clock'
import { rateLimited } from '../shared/errors'
import type { Database } from './database'

/**
 * Fixed-window counters in the store: one statement counts a hit and reads the count, so a limit
 * holds under any burst and across every instance.
 */
export class RateLimitStore {
  constructor(private readonly db: Database) {}

  /** Counts one hit in `bucket`'s window of `window` seconds; answers the hits so far and when the window ends. */
  async hit(bucket: string, window: number, now = Date.now()): Promise<{ hits: number; endsAt: number }> {
    const row = await this.db.get<{ hits: number; window_started_at: string }>(
      `INSERT INTO rate_limits (bucket, hits, window_started_at) VALUES ($1, 1, $2)
       ON CONFLICT (bucket) DO UPDATE SET
         hits = CASE WHEN rate_limits.window_started_at > $3 THEN rate_limits.hits + 1 ELSE 1 END,
         window_started_at = CASE WHEN rate_limits.window_started_at > $3 THEN rate_limits.window_started_at ELSE $2 END
       RETURNING hits, window_started_at`,
      [bucket, new Date(now).toISOString(), isoAfter(-window, now)],
    )
    if (!row) throw new Error(`rate limit bucket ${bucket} was not written`)
    return { hits: Number(row.hits), endsAt: Date.parse(row.window_started_at) + window * 1000 }
  }

  /** Deletes the buckets whose window began before `before`: they count nothing any more. */
  deleteStale(before: string): Promise<number> {
    return this.db.run('DELETE FROM rate_limits WHERE window_started_at <= $1', [before])
  }
}

export interface UserRateLimit {
  /** Actions allowed per window. */
  limit: number
  /** Seconds. */
  window: number
}

/**
 * A per-user limit on one kind of action: `consume(userId)` counts one, or answers 429 with
 * Retry-After. A user over the limit is remembered here until their window ends, so that a flood of
 * refused tries costs no write (and no fsync) each; what is let through is always counted in the store.
 */
export function userRateLimit(store: RateLimitStore, action: string, { limit, window }: UserRateLimit) {
  const refusedUntil = new Map<string, number>()
  const refuse = (until: number, now: number) => rateLimited(`At most ${limit} ${action} per ${window} s; try again later`, (until - now) / 1000)
  return {
    async consume(userId: string): Promise<void> {
      const now = Date.now()
      const until = refusedUntil.get(userId)
      if (until !== undefined && now < until) throw refuse(until, now)
      refusedUntil.delete(userId)
      const { hits, endsAt } = await store.hit(`${action}:${userId}`, window, now)
      if (hits <= limit) return
      if (refusedUntil.size >= MAX_REMEMBERED) refusedUntil.clear()
      refusedUntil.set(userId, endsAt)
      throw refuse(endsAt, now)
    },
  }
}

/** Users remembered as over a limit at most, per limit; past it the memory starts afresh (the store still counts). */
const MAX_REMEMBERED = 100_000

export type UserRateLimiter = ReturnType<typeof userRateLimit>
