import type { Queryable } from '../../db/database'

export type LoginRequestStatus = 'pending' | 'approved' | 'denied' | 'exchanged'

export interface LoginRequestRow {
  request_id: string
  public_key: string
  /** Null for a request started before migration 025. */
  encryption_key: string | null
  address: string
  user_agent: string
  status: LoginRequestStatus
  decided_by: string | null
  decided_session: string | null
  created_at: string
  expires_at: string
}

const COLUMNS = 'request_id, public_key, encryption_key, address, user_agent, status, decided_by, decided_session, created_at, expires_at'

/** QR login requests (migration 022): each statement that decides one is a single guarded UPDATE, so that one decision wins. */
export class LoginRequestStore {
  async insert(row: Omit<LoginRequestRow, 'status' | 'decided_by' | 'decided_session'> & { code_hash: string }, q: Queryable): Promise<void> {
    await q.run(
      `INSERT INTO login_requests (request_id, code_hash, public_key, encryption_key, address, user_agent, status, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`,
      [row.request_id, row.code_hash, row.public_key, row.encryption_key, row.address, row.user_agent, row.created_at, row.expires_at],
    )
  }

  find(requestId: string, q: Queryable): Promise<LoginRequestRow | undefined> {
    return q.get<LoginRequestRow>(`SELECT ${COLUMNS} FROM login_requests WHERE request_id = $1`, [requestId])
  }

  /** The request its QR code names, while it waits for a decision. */
  findPending(codeHash: string, now: string, q: Queryable): Promise<LoginRequestRow | undefined> {
    // A request from before migration 025 has no key to seal its tokens to: nothing to approve.
    return q.get<LoginRequestRow>(
      `SELECT ${COLUMNS} FROM login_requests WHERE code_hash = $1 AND status = 'pending' AND expires_at > $2 AND encryption_key IS NOT NULL`,
      [codeHash, now],
    )
  }

  /** Approves or denies a pending request (by the user's session `sessionId`); answers its id, or undefined when none was pending under that code. */
  async decide(codeHash: string, status: 'approved' | 'denied', decider: { userId: string; sessionId: string }, now: string, q: Queryable): Promise<string | undefined> {
    const row = await q.get<{ request_id: string }>(
      `UPDATE login_requests SET status = $2, decided_by = $3, decided_session = $4, decided_at = $5
       WHERE code_hash = $1 AND status = 'pending' AND expires_at > $5 AND encryption_key IS NOT NULL RETURNING request_id`,
      [codeHash, status, decider.userId, decider.sessionId, now],
    )
    return row?.request_id
  }

  /** Takes the request's one waiting place until `until`, unless another poll holds it (then answers false). */
  async poll(requestId: string, now: string, until: string, q: Queryable): Promise<boolean> {
    return (await q.run('UPDATE login_requests SET polled_at = $3 WHERE request_id = $1 AND (polled_at IS NULL OR polled_at <= $2)', [requestId, now, until])) > 0
  }

  /** Spends an approved request: true for the one caller that did. */
  async spend(requestId: string, now: string, q: Queryable): Promise<boolean> {
    return (await q.run("UPDATE login_requests SET status = 'exchanged' WHERE request_id = $1 AND status = 'approved' AND expires_at > $2", [requestId, now])) > 0
  }

  deleteExpired(before: string, limit: number, q: Queryable): Promise<number> {
    return q.run('DELETE FROM login_requests WHERE request_id IN (SELECT request_id FROM login_requests WHERE expires_at <= $1 LIMIT $2)', [before, limit])
  }
}
