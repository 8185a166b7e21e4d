import type { Queryable } from '../../db/database'

export interface Identity {
  identity_id: string
  provider: string
  subject: string
  email: string | null
  login: string | null
  created_at: string
  last_sign_in_at: string
}

export interface OAuthState {
  provider: string
  code_verifier: string
  /** Whose account the sign-in links to; null when it logs in (or registers). */
  user_id: string | null
}

const IDENTITY_COLUMNS = 'identity_id, provider, subject, email, login, created_at, last_sign_in_at'

/** Identities (a user's ways in at providers) and the sign-ins under way (migration 023). */
export class OAuthStore {
  async insertState(hashes: { state: string; secret: string }, state: OAuthState, createdAt: string, expiresAt: string, q: Queryable): Promise<void> {
    await q.run('INSERT INTO oauth_states (state_hash, secret_hash, provider, code_verifier, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      hashes.state,
      hashes.secret,
      state.provider,
      state.code_verifier,
      state.user_id,
      createdAt,
      expiresAt,
    ])
  }

  /** Takes a live state brought with its page's secret, once: a second callback with it finds nothing; one without the secret leaves it. */
  takeState(hashes: { state: string; secret: string }, now: string, q: Queryable): Promise<OAuthState | undefined> {
    return q.get<OAuthState>('DELETE FROM oauth_states WHERE state_hash = $1 AND secret_hash = $2 AND expires_at > $3 RETURNING provider, code_verifier, user_id', [
      hashes.state,
      hashes.secret,
      now,
    ])
  }

  deleteExpiredStates(now: string, limit: number, q: Queryable): Promise<number> {
    return q.run('DELETE FROM oauth_states WHERE state_hash IN (SELECT state_hash FROM oauth_states WHERE expires_at <= $1 LIMIT $2)', [now, limit])
  }

  holderOf(provider: string, subject: string, q: Queryable): Promise<(Identity & { user_id: string }) | undefined> {
    return q.get(`SELECT user_id, ${IDENTITY_COLUMNS} FROM identities WHERE provider = $1 AND subject = $2`, [provider, subject])
  }

  list(userId: string, q: Queryable): Promise<Identity[]> {
    return q.all<Identity>(`SELECT ${IDENTITY_COLUMNS} FROM identities WHERE user_id = $1 ORDER BY created_at, identity_id`, [userId])
  }

  /** Throws UniqueViolation when the user has an identity at that provider, or another user has this one. */
  async insert(userId: string, identity: Identity, q: Queryable): Promise<void> {
    await q.run(`INSERT INTO identities (user_id, ${IDENTITY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
      userId,
      identity.identity_id,
      identity.provider,
      identity.subject,
      identity.email,
      identity.login,
      identity.created_at,
      identity.last_sign_in_at,
    ])
  }

  async signedIn(identityId: string, at: string, email: string | null, login: string | null, q: Queryable): Promise<void> {
    await q.run('UPDATE identities SET last_sign_in_at = $2, email = $3, login = $4 WHERE identity_id = $1', [identityId, at, email, login])
  }

  async remove(userId: string, identityId: string, q: Queryable): Promise<boolean> {
    return (await q.run('DELETE FROM identities WHERE user_id = $1 AND identity_id = $2', [userId, identityId])) > 0
  }
}
