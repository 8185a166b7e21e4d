import type { Database } from '../../db/database'
import type { Caller, PasswordHasher } from '../../lib/password'
import { accountDeleted, accountInactive, invalidCredentials } from '../../shared/errors'
import type { Grant, SessionService } from '../sessions/service'
import type { User } from '../users/model'
import type { UserService } from '../users/service'
import type { Attempt, LoginThrottle } from './throttle'
import type { RegisterRequest } from './model'

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

/**
 * The password way in: registration, login and change of password. Each password check reserves a
 * slot of the brute-force counters first (throttle.ts) and runs in the bounded hashing queue; a
 * right one opens an ordinary session (sessions/), as every way in does. The hash is the account's
 * (users/ keeps it); only this file reads or changes it.
 */
export class PasswordCredentials {
  constructor(
    private readonly deps: {
      db: Database
      /** The accounts: created, found by name, their password hash read and changed. */
      users: UserService
      sessions: SessionService
      throttle: LoginThrottle
      passwords: PasswordHasher
    },
  ) {}

  /** A new `user` account, active, with whatever profile fields came with it, and its first session. */
  async register(request: RegisterRequest, caller: Caller): Promise<Grant> {
    const user = await this.deps.users.create(request, caller)
    return this.deps.sessions.open(user)
  }

  async login(username: string, password: string, caller: Caller): Promise<Grant> {
    const { users, passwords, throttle } = this.deps
    const attempt = await throttle.reserveLogin(username, caller.address)
    const account = await users.findWithPassword({ username })
    // An account with no password (made by a provider's sign-in) costs the same work and gets the same answer as none.
    const hash = account?.password_hash || undefined
    const matches = await checked(attempt, () => (hash ? passwords.verify(password, hash, caller) : passwords.verifyNothing(password, caller)))
    if (!account || !matches) throw invalidCredentials('Wrong username or password')
    if (account.user.status === 'deleted') throw accountDeleted()
    if (!account.user.is_active) throw accountInactive()
    return this.deps.sessions.open(account.user)
  }

  /** The user's own password, checked as a change of password checks it (and counted against the same lock-out). */
  async confirm(user: User, password: string, caller: Caller, wrong = 'The password is wrong'): Promise<void> {
    const { users, passwords, throttle } = this.deps
    const attempt = await throttle.reservePasswordCheck(user.user_id)
    const account = await users.findWithPassword({ userId: user.user_id })
    const matches = await checked(attempt, async () => !!account?.password_hash && (await passwords.verify(password, account.password_hash, caller)))
    if (!matches) throw invalidCredentials(wrong)
  }

  /** Needs the current password; every other session of the user ends, this one goes on. */
  async change(user: User, sessionId: string, currentPassword: string, newPassword: string, caller: Caller): Promise<void> {
    const { users, passwords, throttle, sessions, db } = this.deps
    users.assertPasswordAllowed(newPassword, '/new_password')
    await this.confirm(user, currentPassword, caller, 'The current password is wrong')
    const passwordHash = await passwords.hash(newPassword, caller)
    await db.transaction(async (tx) => {
      await users.setPasswordHash(user.user_id, passwordHash, tx)
      await sessions.endAllOf(user.user_id, 'password_changed', tx, sessionId)
    })
  }

  /** Forgets the brute-force counters that can no longer count or lock. */
  purgeStale(now = Date.now()): Promise<number> {
    return this.deps.throttle.purgeStale(now)
  }
}
