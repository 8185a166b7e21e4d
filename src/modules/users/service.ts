import { type Database, type Transaction, UniqueViolation } from '../../db/database'
import { getOrCreateSetting, readSetting } from '../../db/settings'
import { type Caller, INTERNAL_CALLER, type PasswordHasher } from '../../lib/password'
import { nowIso } from '../../lib/clock'
import { ApiError, conflict, forbidden, invalidField, notFound } from '../../shared/errors'
import type { SessionStore } from '../auth/store'
import type { User, UserChanges, UserCreateRequest, UserFilter } from './model'
import { toUser, type UserRecord, type UserStore } from './store'

/** Runs inside the transaction that deletes a user, so other domains can let go of them atomically. */
export type UserDeletionHook = (userId: string, tx: Transaction) => Promise<void>

export class UserService {
  readonly #deletionHooks: UserDeletionHook[] = []

  constructor(
    private readonly db: Database,
    private readonly users: UserStore,
    private readonly sessions: SessionStore,
    private readonly passwords: PasswordHasher,
    private readonly passwordMinLength: number,
  ) {}

  onDelete(hook: UserDeletionHook): void {
    this.#deletionHooks.push(hook)
  }

  /** Rejects a password shorter than the configured minimum (the schema already enforces 8..128). */
  assertPasswordAllowed(password: string, field: string): void {
    if (password.length < this.passwordMinLength) {
      const message = `must be at least ${this.passwordMinLength} characters`
      throw invalidField(field, message)
    }
  }

  async create({ username, password, user_role = 'user', is_active = true }: UserCreateRequest, caller: Caller = INTERNAL_CALLER): Promise<User> {
    this.assertPasswordAllowed(password, '/password')
    if (await this.users.findByUsername(username)) throw usernameTaken()
    const now = nowIso()
    const user: UserRecord = {
      user_id: Bun.randomUUIDv7(),
      username,
      password_hash: await this.passwords.hash(password, caller),
      user_role,
      is_active,
      created_at: now,
      updated_at: now,
    }
    try {
      await this.users.insert(user)
    } catch (error) {
      throw error instanceof UniqueViolation ? usernameTaken() : error
    }
    return toUser(user)
  }

  async get(userId: string): Promise<User> {
    return toUser(await this.#require(userId))
  }

  async list(filter: UserFilter) {
    return this.users.list(filter)
  }

  /** PUT /users/me: anyone may rename themself; role and status are an admin's to change. */
  async updateSelf(actor: User, requestedId: string | undefined, changes: UserChanges): Promise<User> {
    if (actor.user_role !== 'admin' && (changes.user_role !== undefined || changes.is_active !== undefined))
      throw forbidden('Only an admin may change user_role or is_active')
    return this.update(actor, actor.user_id, requestedId, changes)
  }

  async update(actor: User, userId: string, requestedId: string | undefined, changes: UserChanges): Promise<User> {
    if (requestedId !== undefined && requestedId !== userId)
      throw invalidField('/user_id', "must equal the target user's id")
    try {
      return await this.db.transaction(async (tx) => {
        const target = await this.#require(userId, tx)
        const losesAdmin =
          target.user_role === 'admin' && target.is_active && (changes.user_role === 'user' || changes.is_active === false)
        if (losesAdmin) await this.#assertAdminMayGo(actor, target, tx)
        const now = nowIso()
        await this.users.update(userId, changes, now, tx)
        if (changes.is_active === false && target.is_active) await this.sessions.revokeAllOfUser(userId, 'account_deactivated', now, null, tx)
        return toUser({ ...target, ...definedOnly(changes), updated_at: now })
      })
    } catch (error) {
      throw error instanceof UniqueViolation ? usernameTaken() : error
    }
  }

  setActive(actor: User, userId: string, is_active: boolean): Promise<User> {
    return this.update(actor, userId, undefined, { is_active })
  }

  async delete(actor: User, userId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const target = await this.#require(userId, tx)
      if (target.user_role === 'admin' && target.is_active) await this.#assertAdminMayGo(actor, target, tx)
      for (const hook of this.#deletionHooks) await hook(userId, tx)
      await this.users.delete(userId, tx)
    })
  }

  /**
   * Gives the deployment its first admin from ADMIN_USERNAME and ADMIN_PASSWORD, once: the first
   * start creates it (or finds it there) and records that in the store, and later starts leave
   * accounts alone, so an admin deleted or renamed on purpose does not come back with the password
   * from the environment. Answers what it did; `not_an_active_admin` means the name belongs to
   * another kind of account, which the operator's password would not open.
   */
  async bootstrapAdmin(username: string, password: string): Promise<'created' | 'exists' | 'done_before' | 'not_an_active_admin'> {
    if ((await readSetting(this.db, ADMIN_BOOTSTRAPPED)) !== undefined) return 'done_before'
    const existing = await this.users.findByUsername(username)
    if (existing && !(existing.user_role === 'admin' && existing.is_active)) return 'not_an_active_admin'
    let adminId = existing?.user_id
    if (adminId === undefined)
      try {
        adminId = (await this.create({ username, password, user_role: 'admin', is_active: true })).user_id
      } catch (error) {
        // Another instance created it first.
        if (error instanceof ApiError && error.code === 'conflict') return this.bootstrapAdmin(username, password)
        throw error
      }
    const recorded = adminId
    await getOrCreateSetting(this.db, ADMIN_BOOTSTRAPPED, () => recorded)
    return existing ? 'exists' : 'created'
  }

  /** An admin never removes themself, and the last active admin never goes. */
  async #assertAdminMayGo(actor: User, target: UserRecord, tx: Transaction): Promise<void> {
    if (actor.user_id === target.user_id)
      throw conflict('An admin cannot delete, deactivate or demote themself')
    // Serialise admin removals so that two at once cannot both see the other as the remaining admin.
    await tx.lock('active-admins')
    if ((await this.users.countActiveAdmins(tx)) <= 1) throw conflict('The last active admin cannot be removed')
  }

  async #require(userId: string, tx?: Transaction): Promise<UserRecord> {
    const user = await this.users.findById(userId, tx)
    if (!user) throw notFound('User not found')
    return user
  }
}

const ADMIN_BOOTSTRAPPED = 'admin_bootstrapped'

function usernameTaken(): ApiError {
  return conflict('This username is already taken')
}

function definedOnly<Shape extends object>(value: Shape): Partial<Shape> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<Shape>
}
