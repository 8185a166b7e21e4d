import { BatchedReads } from '../../db/batched-reads'
import { batchRows, inBatches } from '../../db/batches'
import type { Database, Queryable, Transaction } from '../../db/database'
import { isoAfter, nowIso } from '../../lib/clock'
import { randomToken, sha256 } from '../../lib/crypto'
import { accountInactive, invalidRefreshToken, refreshTokenReused, unauthorized } from '../../shared/errors'
import { type LobbyEvent, userStream } from '../events/model'
import type { EventLog } from '../events/service'
import type { User } from '../users/model'
import type { PrincipalCache } from './principals'
import type { RevocationReason, SessionStore } from './store'

/** What opening or refreshing a session hands to the route, which signs the access token. */
export interface Grant {
  user: User
  sessionId: string
  refreshToken: string
  /** Seconds the refresh token stays valid: REFRESH_TOKEN_TTL, or less near the end of the session's life. */
  refreshTokenExpiresIn: number
}

/** Seconds, all of them. */
export interface SessionPolicy {
  accessTokenTtl: number
  refreshTokenTtl: number
  /** However often it is refreshed, a session ends this long after its login. */
  sessionMaxLifetime: number
  /** Live sessions one user may hold; a login past it ends the oldest. */
  maxSessionsPerUser: number
}

type RefreshOutcome = Grant | 'invalid' | 'reused'

const REFRESH_TOKEN_BYTES = 32

const earliest = (a: string, b: string) => (a < b ? a : b)
const secondsUntil = (iso: string, now: string) => Math.round((Date.parse(iso) - Date.parse(now)) / 1000)

/**
 * Sessions: how a person stays signed in, whatever way they signed in. Every way in (a password
 * today; credentials/ holds one file per way) opens its session through open(). A session lives
 * through refreshes of its rotating refresh token, and ends by logout, reuse of a spent refresh
 * token, a change of password, or its account's end (a hook of the users domain); each end is
 * refused on every instance from the next request on (the store is read on each; with the
 * principal cache, on other instances once the bus's notice arrives), and told on its
 * user's stream in the same transaction.
 */
export class SessionService {
  /** The users behind live sessions, read together when many are asked for at once (a resume storm). */
  readonly #sessionUsers: BatchedReads<string, User>

  constructor(
    private readonly deps: {
      db: Database
      sessionStore: SessionStore
      events: EventLog
      policy: SessionPolicy
      /** With PRINCIPAL_CACHE: live sessions held in memory, forgotten as their changes commit. */
      principals?: PrincipalCache
    },
  ) {
    this.#sessionUsers = new BatchedReads((sessionIds) => deps.sessionStore.findSessionUsers(sessionIds, deps.db))
  }

  /**
   * Opens a session for `user`, ending their oldest past MAX_SESSIONS_PER_USER. `announce` makes the
   * event that tells the user's other devices, written with the session (a QR login does).
   */
  async open(user: User, announce?: (sessionId: string) => LobbyEvent): Promise<Grant> {
    const sessionId = Bun.randomUUIDv7()
    const refreshToken = randomToken(REFRESH_TOKEN_BYTES)
    const clock = Date.now()
    const now = new Date(clock).toISOString()
    const expiresAt = earliest(isoAfter(this.deps.policy.refreshTokenTtl, clock), this.#sessionEnd(now))
    const session = { sessionId, userId: user.user_id, refreshTokenHash: sha256(refreshToken), now, expiresAt }
    await this.deps.db.transaction(async (tx) => {
      await this.deps.sessionStore.create(session, tx)
      await this.#tell(user.user_id, await this.deps.sessionStore.revokeAllButNewest(user.user_id, this.deps.policy.maxSessionsPerUser, now, tx), 'too_many_sessions', tx)
      if (announce) await this.deps.events.emit(tx, [userStream(user.user_id), announce(sessionId)])
    })
    return { user, sessionId, refreshToken, refreshTokenExpiresIn: secondsUntil(expiresAt, now) }
  }

  /**
   * Rotates a refresh token. A token that was already rotated means it leaked or raced: the whole
   * session is revoked, and that revocation commits even though this request fails.
   */
  async refresh(refreshToken: string): Promise<Grant> {
    const tokenHash = sha256(refreshToken)
    const { sessionStore, db, policy } = this.deps
    const outcome = await db.transaction<RefreshOutcome>(async (tx) => {
      const now = nowIso()
      const record = await sessionStore.findRefreshToken(tokenHash, tx)
      if (!record || record.session_revoked_at !== null || record.expires_at <= now || this.#sessionEnd(record.session_created_at) <= now)
        return 'invalid'
      if (record.rotated_at !== null || !(await sessionStore.markRotated(tokenHash, now, tx))) {
        await this.end(record.session_id, 'refresh_token_reused', tx)
        return 'reused'
      }
      const user = await sessionStore.findSessionUser(record.session_id, tx)
      if (!user?.is_active) return 'invalid'
      const expiresAt = earliest(isoAfter(policy.refreshTokenTtl, Date.parse(now)), this.#sessionEnd(record.session_created_at))
      const next = await this.#issueRefreshToken(record.session_id, now, expiresAt, tx)
      return { user, sessionId: record.session_id, refreshToken: next, refreshTokenExpiresIn: secondsUntil(expiresAt, now) }
    })
    if (outcome === 'reused') throw refreshTokenReused('This refresh token was already used; the session is revoked')
    if (outcome === 'invalid') throw invalidRefreshToken('The refresh token is invalid, expired or revoked')
    return outcome
  }

  logout(sessionId: string): Promise<void> {
    return this.deps.db.transaction((tx) => this.end(sessionId, 'logout', tx))
  }

  /**
   * The caller behind a verified access token: the account of a live session of `userId`, read from
   * the store (or the principal cache) so that revocation, role and status are current; throws the
   * 401 or 403 to answer otherwise. `fresh`:
   * from the store even with the principal cache, for what makes a new way in (a QR approval, a
   * linked identity), which a session revoked on another instance a moment ago must never make.
   */
  async authenticate(sessionId: string, userId: string, { fresh = false } = {}): Promise<User> {
    const { principals } = this.deps
    const read = () => this.#sessionUsers.read(sessionId)
    const user = await (principals && !fresh ? principals.through(sessionId, read) : read())
    if (!user || user.user_id !== userId) throw unauthorized('The session has ended; log in again')
    if (!user.is_active) throw accountInactive()
    return user
  }

  async end(sessionId: string, reason: RevocationReason, tx: Transaction): Promise<void> {
    const userId = await this.deps.sessionStore.revoke(sessionId, reason, nowIso(), tx)
    if (userId !== undefined) await this.#tell(userId, [sessionId], reason, tx)
  }

  /** Ends every live session of the user but `keep`. */
  async endAllOf(userId: string, reason: RevocationReason, tx: Transaction, keep: string | null = null): Promise<void> {
    await this.#tell(userId, await this.deps.sessionStore.revokeAllOfUser(userId, reason, nowIso(), keep, tx), reason, tx)
  }

  /**
   * Deletes what can no longer be used, so the tables stay the size of the live data: sessions
   * once their last access token has expired too, their refresh tokens first (a session refreshed
   * for days holds one per refresh). An unknown token is refused just as an expired one was.
   */
  async purgeExpired(now = Date.now(), batchSize = batchRows(this.deps.db)): Promise<number> {
    const before = isoAfter(-this.deps.policy.accessTokenTtl, now)
    await inBatches((limit) => this.deps.sessionStore.deleteExpiredRefreshTokens(before, limit), batchSize)
    return inBatches((limit) => this.deps.sessionStore.deleteExpired(before, limit), batchSize)
  }

  async #tell(userId: string, sessionIds: string[], reason: RevocationReason, tx: Transaction): Promise<void> {
    const stream = userStream(userId)
    await this.deps.events.emit(tx, ...sessionIds.map((session_id): [string, LobbyEvent] => [stream, { type: 'session_revoked', session_id, reason }]))
  }

  async #issueRefreshToken(sessionId: string, now: string, expiresAt: string, tx: Queryable): Promise<string> {
    const refreshToken = randomToken(REFRESH_TOKEN_BYTES)
    await this.deps.sessionStore.addRefreshToken({ sessionId, refreshTokenHash: sha256(refreshToken), now, expiresAt }, tx)
    return refreshToken
  }

  /** When a session that began at `createdAt` ends, refreshed or not. */
  #sessionEnd(createdAt: string): string {
    return isoAfter(this.deps.policy.sessionMaxLifetime, Date.parse(createdAt))
  }
}
