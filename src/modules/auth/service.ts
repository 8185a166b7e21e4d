import { inBatches } from '../../db/batches'
import type { Database, Queryable } from '../../db/database'
import type { Caller, PasswordHasher } from '../../lib/password'
import { isoAfter, nowIso } from '../../lib/clock'
import { randomToken, sha256 } from '../../lib/crypto'
import { accountInactive, invalidCredentials, invalidRefreshToken, refreshTokenReused, unauthorized } from '../../shared/errors'
import type { User } from '../users/model'
import type { UserService } from '../users/service'
import { toUser, type UserStore } from '../users/store'
import type { SessionStore } from './store'
import type { SessionService } from './sessions'
import type { Attempt, LoginThrottle } from './throttle'

/** What a successful registration, login or refresh hands to the route, which signs the access token. */
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

/** Runs a password check under its reserved attempt and settles the attempt with the result. */
async function checked(attempt: Attempt, check: () => Promise<boolean>): Promise<boolean> {
  let matches: boolean
  try {
    matches = await check()
  } catch (error) {
    await attempt.cancelled()
    throw error
  }
  await (matches ? attempt.succeeded() : attempt.failed())
  return matches
}

export class AuthService {
  constructor(
    private readonly deps: {
      db: Database
      userStore: UserStore
      /** Registration creates the account there, by the users domain's rules. */
      users: UserService
      sessionStore: SessionStore
      /** Ending sessions, with their events. */
      sessions: SessionService
      throttle: LoginThrottle
      passwords: PasswordHasher
      policy: SessionPolicy
    },
  ) {}

  async register(username: string, password: string, caller: Caller): Promise<Grant> {
    const user = await this.deps.users.create({ username, password }, caller)
    return this.#openSession(user)
  }

  async login(username: string, password: string, caller: Caller): Promise<Grant> {
    const attempt = await this.deps.throttle.reserveLogin(username, caller.address)
    const account = await this.deps.userStore.findByUsername(username, this.deps.db)
    const matches = await checked(attempt, () =>
      account ? this.deps.passwords.verify(password, account.password_hash, caller) : this.deps.passwords.verifyNothing(password, caller),
    )
    if (!account || !matches) throw invalidCredentials('Wrong username or password')
    if (!account.is_active) throw accountInactive()
    return this.#openSession(toUser(account))
  }

  /**
   * Rotates a refresh token. A token that was already rotated means it leaked or raced: the whole
   * session is revoked, and that revocation commits even though this request fails.
   */
  async refresh(refreshToken: string): Promise<Grant> {
    const tokenHash = sha256(refreshToken)
    const outcome = await this.deps.db.transaction<RefreshOutcome>(async (tx) => {
      const now = nowIso()
      const record = await this.deps.sessionStore.findRefreshToken(tokenHash, tx)
      if (!record || record.session_revoked_at !== null || record.expires_at <= now || this.#sessionEnd(record.session_created_at) <= now)
        return 'invalid'
      if (record.rotated_at !== null || !(await this.deps.sessionStore.markRotated(tokenHash, now, tx))) {
        await this.deps.sessions.end(record.session_id, 'refresh_token_reused', tx)
        return 'reused'
      }
      const account = await this.deps.userStore.findById(record.user_id, tx)
      if (!account?.is_active) return 'invalid'
      const expiresAt = earliest(isoAfter(this.deps.policy.refreshTokenTtl, Date.parse(now)), this.#sessionEnd(record.session_created_at))
      const next = await this.#issueRefreshToken(record.session_id, now, expiresAt, tx)
      return { user: toUser(account), sessionId: record.session_id, refreshToken: next, refreshTokenExpiresIn: secondsUntil(expiresAt, now) }
    })
    if (outcome === 'reused') throw refreshTokenReused('This refresh token was already used; the session is revoked')
    if (outcome === 'invalid') throw invalidRefreshToken('The refresh token is invalid, expired or revoked')
    return outcome
  }

  async logout(sessionId: string): Promise<void> {
    await this.deps.db.transaction((tx) => this.deps.sessions.end(sessionId, 'logout', tx))
  }

  /** Needs the current password; every other session of the user ends, this one goes on. */
  async changePassword(user: User, sessionId: string, currentPassword: string, newPassword: string, caller: Caller): Promise<void> {
    this.deps.users.assertPasswordAllowed(newPassword, '/new_password')
    const attempt = await this.deps.throttle.reservePasswordCheck(user.user_id)
    const account = await this.deps.userStore.findById(user.user_id, this.deps.db)
    const matches = await checked(attempt, async () => account !== undefined && (await this.deps.passwords.verify(currentPassword, account.password_hash, caller)))
    if (!matches) throw invalidCredentials('The current password is wrong')
    const passwordHash = await this.deps.passwords.hash(newPassword, caller)
    await this.deps.db.transaction(async (tx) => {
      const now = nowIso()
      await this.deps.userStore.update(user.user_id, { password_hash: passwordHash }, now, tx)
      await this.deps.sessions.endAllOf(user.user_id, 'password_changed', tx, sessionId)
    })
  }

  /**
   * Deletes what can no longer be used, so the tables stay the size of the live data: sessions
   * (with their refresh tokens) once their last access token has expired too, and stale login
   * counters. Every answer stays the same: an unknown token is refused just as an expired one.
   */
  async purgeExpired(now = Date.now(), batchSize = 1000): Promise<{ sessions: number; loginCounters: number }> {
    const before = isoAfter(-this.deps.policy.accessTokenTtl, now)
    await inBatches((limit) => this.deps.sessionStore.deleteExpiredRefreshTokens(before, limit), batchSize)
    const sessions = await inBatches((limit) => this.deps.sessionStore.deleteExpired(before, limit), batchSize)
    return { sessions, loginCounters: await this.deps.throttle.purgeStale(now) }
  }

  /** The caller behind a verified access token, read from the store so revocation, role and status are current. */
  async authenticate(sessionId: string, userId: string): Promise<User> {
    const row = await this.deps.sessionStore.findSessionUser(sessionId, this.deps.db)
    if (!row || row.user_id !== userId) throw unauthorized('The session has ended; log in again')
    if (!row.is_active) throw accountInactive()
    return row
  }

  async #openSession(user: User): Promise<Grant> {
    const sessionId = Bun.randomUUIDv7()
    const refreshToken = randomToken(REFRESH_TOKEN_BYTES)
    const clock = Date.now()
    const now = new Date(clock).toISOString()
    const expiresAt = earliest(isoAfter(this.deps.policy.refreshTokenTtl, clock), this.#sessionEnd(now))
    const session = { sessionId, userId: user.user_id, refreshTokenHash: sha256(refreshToken), now, expiresAt }
    await this.deps.db.transaction(async (tx) => {
      await this.deps.sessionStore.create(session, tx)
      await this.deps.sessions.endAllButNewest(user.user_id, this.deps.policy.maxSessionsPerUser, tx)
    })
    return { user, sessionId, refreshToken, refreshTokenExpiresIn: secondsUntil(expiresAt, now) }
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
