import type { Database, Queryable, Transaction } from '../../db/database'
import type { User } from '../users/model'

export interface RefreshTokenRecord {
  session_id: string
  session_created_at: string
  user_id: string
  expires_at: string
  rotated_at: string | null
  session_revoked_at: string | null
}


export type RevocationReason =
  | 'logout'
  | 'refresh_token_reused'
  | 'password_changed'
  | 'account_deactivated'
  | 'account_deleted'
  | 'too_many_sessions'

/** Sessions and their refresh tokens. A session is alive while `revoked_at` is null. */
export class SessionStore {
  constructor(private readonly db: Database) {}

  async create(
    session: { sessionId: string; userId: string; refreshTokenHash: string; now: string; expiresAt: string },
    q: Queryable,
  ): Promise<void> {
    await q.run('INSERT INTO sessions (session_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [
      session.sessionId,
      session.userId,
      session.now,
      session.expiresAt,
    ])
    await this.#insertRefreshToken(session, q)
  }

  /** The next refresh token of a session; the session now lives as long as it does. */
  async addRefreshToken(
    token: { sessionId: string; refreshTokenHash: string; now: string; expiresAt: string },
    q: Queryable,
  ): Promise<void> {
    await this.#insertRefreshToken(token, q)
    await q.run('UPDATE sessions SET expires_at = $2 WHERE session_id = $1', [token.sessionId, token.expiresAt])
  }

  async findRefreshToken(tokenHash: string, q: Queryable): Promise<RefreshTokenRecord | undefined> {
    return q.get<RefreshTokenRecord>(
      `SELECT rt.session_id, s.created_at AS session_created_at, s.user_id, rt.expires_at, rt.rotated_at, s.revoked_at AS session_revoked_at
         FROM refresh_tokens rt JOIN sessions s ON s.session_id = rt.session_id
        WHERE rt.token_hash = $1`,
      [tokenHash],
    )
  }

  /** Marks a refresh token used; false when another request already did (the loser of a race). */
  async markRotated(tokenHash: string, now: string, q: Queryable): Promise<boolean> {
    return (await q.run('UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL', [tokenHash, now])) === 1
  }

  /** The user behind a live session, or undefined when the session is unknown or revoked. */
  async findSessionUser(sessionId: string, q: Queryable): Promise<User | undefined> {
    const row = await q.get<Omit<User, 'is_active'> & { is_active: boolean | number }>(
      `SELECT u.user_id, u.username, u.user_role, u.is_active, u.created_at, u.updated_at
         FROM sessions s JOIN users u ON u.user_id = s.user_id
        WHERE s.session_id = $1 AND s.revoked_at IS NULL`,
      [sessionId],
    )
    // SQLite answers booleans as 0/1: converted here, once, as every store does.
    return row && { ...row, is_active: Boolean(row.is_active) }
  }

  /**
   * Deletes up to `limit` refresh tokens of sessions that expired before `before`: a session
   * refreshed for days holds one per refresh, too many to go by cascade in one statement.
   */
  deleteExpiredRefreshTokens(before: string, limit: number): Promise<number> {
    return this.db.run(
      `DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens
         WHERE session_id IN (SELECT session_id FROM sessions WHERE expires_at <= $1) LIMIT $2)`,
      [before, limit],
    )
  }

  /** Deletes up to `limit` sessions that expired before `before` (their refresh tokens went first). */
  async deleteExpired(before: string, limit: number): Promise<number> {
    return this.db.run('DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM sessions WHERE expires_at <= $1 LIMIT $2)', [before, limit])
  }

  async countActive(now: string): Promise<number> {
    const row = await this.db.get<{ total: number }>(
      'SELECT CAST(count(*) AS INTEGER) AS total FROM sessions WHERE revoked_at IS NULL AND expires_at > $1',
      [now],
    )
    return row?.total ?? 0
  }

  /** Revokes a live session; answers its user when it was live until now. */
  async revoke(sessionId: string, reason: RevocationReason, now: string, q: Queryable): Promise<string | undefined> {
    const row = await q.get<{ user_id: string }>(
      'UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE session_id = $1 AND revoked_at IS NULL RETURNING user_id',
      [sessionId, now, reason],
    )
    return row?.user_id
  }

  /** Revokes the user's live sessions beyond the `keep` newest ones; answers how many. */
  async revokeAllButNewest(userId: string, keep: number, now: string, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ session_id: string }>(
      `UPDATE sessions SET revoked_at = $2, revoked_reason = 'too_many_sessions'
        WHERE session_id IN (
          SELECT session_id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
           ORDER BY created_at DESC, session_id DESC LIMIT $4 OFFSET $3)
        RETURNING session_id`,
      [userId, now, keep, Number.MAX_SAFE_INTEGER],
    )
    return rows.map((row) => row.session_id)
  }

  /** Revokes every live session of a user, except `keepSessionId` when given. */
  async revokeAllOfUser(
    userId: string,
    reason: RevocationReason,
    now: string,
    keepSessionId: string | null = null,
    q: Queryable,
  ): Promise<string[]> {
    const rows = await q.all<{ session_id: string }>(
      `UPDATE sessions SET revoked_at = $2, revoked_reason = $3
        WHERE user_id = $1 AND revoked_at IS NULL AND session_id <> COALESCE($4, '')
        RETURNING session_id`,
      [userId, now, reason, keepSessionId],
    )
    return rows.map((row) => row.session_id)
  }

  async #insertRefreshToken(
    token: { sessionId: string; refreshTokenHash: string; now: string; expiresAt: string },
    q: Queryable,
  ): Promise<void> {
    await q.run('INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)', [
      token.refreshTokenHash,
      token.sessionId,
      token.now,
      token.expiresAt,
    ])
  }
}

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
