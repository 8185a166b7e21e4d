import { inList } from '../../db/in-list'
import type { Database, Queryable } from '../../db/database'
import type { User } from '../users/model'
import { fromRow, userColumns } from '../users/store'

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
    return (await this.findSessionUsers([sessionId], q)).get(sessionId)
  }

  /** The user behind each live session of `sessionIds`; sessions unknown or revoked are left out. */
  async findSessionUsers(sessionIds: string[], q: Queryable): Promise<Map<string, User>> {
    const { marks, params } = inList(sessionIds)
    const rows = await q.all<User & { session_id: string }>(
      `SELECT s.session_id, ${userColumns('u')}
         FROM sessions s JOIN users u ON u.user_id = s.user_id
        WHERE s.session_id IN (${marks}) AND s.revoked_at IS NULL`,
      params,
    )
    return new Map(rows.map(({ session_id, ...row }) => [session_id, fromRow(row)]))
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
