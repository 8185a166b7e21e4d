import { type Database, type Queryable, type Transaction, UniqueViolation } from '../../db/database'
import type { UserRateLimiter } from '../../db/rate-limits'
import { getOrCreateSetting, readSetting } from '../../db/settings'
import { type Caller, INTERNAL_CALLER, type PasswordHasher } from '../../lib/password'
import { nextTurn } from '../../db/batches'
import { isoAfter, nowIso } from '../../lib/clock'
import { ApiError, conflict, forbidden, invalidField, notFound } from '../../shared/errors'
import { ACCOUNTS_STREAM, type LobbyEvent, userStream } from '../events/model'
import type { EventLog } from '../events/service'
import { PROFILE_FIELDS, type Profile, type User, type UserChanges, type UserCreateRequest, type UserFilter } from './model'
import { emailKey, normaliseProfile, searchTextOf } from './profile'
import { statusOf, toUser, type UserRecord, type UserStore } from './store'

/**
 * What another domain lets go of when an account is deleted (its seats in open rooms, its pending
 * invitations) or erased (its messages, its conversations): in batches that yield, since a user can
 * own many rows. Each runs again, harmlessly, when a deletion cut short is repeated.
 */
export type LetGo = (userId: string) => Promise<void>

/** A deletion's step, told how to check, in each of its transactions, that the account was not restored meanwhile. */
export type LetGoWhileDeleted = (userId: string, stillDeleted: (q: Queryable) => Promise<boolean>) => Promise<void>

/** What another domain does, in the same transaction, when an account stops being usable: deactivated, or being deleted. */
export type Ending = (userId: string, why: 'deactivated' | 'deleted', tx: Transaction) => Promise<void>

/**
 * Accounts and their administration. The domain knows nothing of the others: what a change means to
 * them they register here as hooks. An account that stops being usable (deactivated, or at the
 * start of its deletion) calls each `Ending` in its own transaction (the sessions end there). A
 * deletion keeps the row (name and address stay reserved, the account can be restored) and lets
 * each domain that registered `onDeleted` let go of what a live account holds; an erasure, asked
 * for or USER_PURGE_AFTER later, lets `onErase` domains let go of the rest before the row goes.
 */
export class UserService {
  readonly #onDeleted: LetGoWhileDeleted[] = []
  readonly #onErase: LetGo[] = []
  readonly #endings: Ending[] = []

  constructor(
    private readonly deps: {
      db: Database
      userStore: UserStore
      passwords: PasswordHasher
      events: EventLog
      /** ACCOUNT_RATE_LIMIT per USER_RATE_WINDOW: changes one user makes to their own account. */
      selfChanges: UserRateLimiter
      passwordMinLength: number
    },
  ) {}

  /** Rejects a password shorter than the configured minimum (the schema already enforces 8..128). */
  assertPasswordAllowed(password: string, field: string): void {
    if (password.length < this.deps.passwordMinLength) {
      const message = `must be at least ${this.deps.passwordMinLength} characters`
      throw invalidField(field, message)
    }
  }

  /** `userId` is given only by the demo data, whose ids are fixed (shared/demo.ts). */
  async create({ password, ...account }: UserCreateRequest, caller: Caller = INTERNAL_CALLER, userId = Bun.randomUUIDv7()): Promise<User> {
    this.assertPasswordAllowed(password, '/password')
    // A name or address already taken is refused before the hash, which is the costly part.
    await this.#assertFree(account.username, normaliseProfile(account).email, this.deps.db)
    const passwordHash = await this.deps.passwords.hash(password, caller)
    return this.deps.db.transaction((tx) => this.#insert(account, passwordHash, userId, tx))
  }

  /** An account whose way in is an identity at a provider (credentials/oauth.ts): no password opens it. */
  createWithoutPassword(account: Omit<UserCreateRequest, 'password'>, tx: Transaction): Promise<User> {
    return this.#insert(account, NO_PASSWORD, Bun.randomUUIDv7(), tx)
  }

  /** Whether the account has a password to log in with (one made by a provider's sign-in has none). */
  async hasPassword(userId: string, q: Queryable): Promise<boolean> {
    return ((await this.deps.userStore.findById(userId, q))?.password_hash ?? NO_PASSWORD) !== NO_PASSWORD
  }

  async #insert(
    { username, user_role = 'user', is_active = true, ...profile }: Omit<UserCreateRequest, 'password'>,
    passwordHash: string,
    userId: string,
    tx: Transaction,
  ): Promise<User> {
    const details = normaliseProfile(profile)
    await this.#assertFree(username, details.email, tx)
    const now = nowIso()
    const user: UserRecord = {
      user_id: userId,
      username,
      password_hash: passwordHash,
      user_role,
      is_active,
      created_at: now,
      updated_at: now,
      status: is_active ? 'active' : 'inactive',
      deleted_at: null,
      ...NO_PROFILE,
      ...definedOnly(details),
      avatar_url: null,
    }
    try {
      await this.deps.userStore.insert({ ...user, ...derived(user) }, tx)
    } catch (error) {
      throw error instanceof UniqueViolation ? await this.#taken(user.email, undefined) : error
    }
    // Only for other services: the account's own stream has nobody to tell yet.
    await this.deps.events.emit(tx, [ACCOUNTS_STREAM, { type: 'account_created', user_id: userId }])
    return toUser(user)
  }

  async #assertFree(username: string, email: string | null | undefined, q: Queryable): Promise<void> {
    if (await this.deps.userStore.findByUsername(username, q)) throw usernameTaken()
    if (await this.#emailHeldByAnother(email, undefined, q)) throw emailTaken()
  }

  /** An active account by name, any case: whom invitations may go to. */
  async findActiveByName(username: string, q: Queryable): Promise<User | undefined> {
    const user = await this.deps.userStore.findByUsername(username, q)
    return user?.is_active ? toUser(user) : undefined
  }

  /** An account with its password hash, by name (any case) or id: for the password way in (credentials/password.ts) only. */
  async findWithPassword(key: { username: string } | { userId: string }): Promise<{ user: User; password_hash: string } | undefined> {
    const { userStore, db } = this.deps
    const record = 'username' in key ? await userStore.findByUsername(key.username, db) : await userStore.findById(key.userId, db)
    return record && { user: toUser(record), password_hash: record.password_hash }
  }

  /** A new password hash, in the caller's transaction (which ends the other sessions). */
  async setPasswordHash(userId: string, passwordHash: string, tx: Transaction): Promise<void> {
    await this.deps.userStore.update(userId, { password_hash: passwordHash }, nowIso(), tx)
    await this.#announce(tx, { type: 'account_changed', user_id: userId, fields: ['password'] })
  }

  /** An active account by id: whom direct messages may go to. */
  async findActive(userId: string, q: Queryable): Promise<User | undefined> {
    const user = await this.deps.userStore.findById(userId, q)
    return user?.is_active ? toUser(user) : undefined
  }

  async get(userId: string): Promise<User> {
    return toUser(await this.#require(userId, this.deps.db))
  }

  async list(filter: UserFilter) {
    return this.deps.userStore.list(filter)
  }

  /**
   * PUT /users/me: anyone may rename themself; role and status are an admin's to change. A change
   * counts against ACCOUNT_RATE_LIMIT; one that changes nothing is answered without a write.
   */
  async updateSelf(actor: User, requestedId: string | undefined, changes: UserChanges): Promise<User> {
    if (actor.user_role !== 'admin' && (changes.user_role !== undefined || changes.is_active !== undefined))
      throw forbidden('admin_only', 'Only an admin may change user_role or is_active')
    if (requestedId !== undefined && requestedId !== actor.user_id) throw invalidField('/user_id', "must equal the target user's id")
    const current = await this.#require(actor.user_id, this.deps.db)
    if (changedFields(current, normaliseProfile(changes)).length === 0) return toUser(current)
    await this.deps.selfChanges.consume(actor.user_id)
    return this.update(actor, actor.user_id, requestedId, changes)
  }

  async update(actor: User, userId: string, requestedId: string | undefined, requested: UserChanges): Promise<User> {
    if (requestedId !== undefined && requestedId !== userId)
      throw invalidField('/user_id', "must equal the target user's id")
    const changes = normaliseProfile(requested)
    try {
      return await this.deps.db.transaction(async (tx) => {
        const target = await this.#require(userId, tx)
        if (target.deleted_at) throw userDeleted()
        const fields = changedFields(target, changes)
        // Nothing to change: nothing written, nobody told.
        if (fields.length === 0) return toUser(target)
        const losesAdmin =
          target.user_role === 'admin' && target.is_active && (changes.user_role === 'user' || changes.is_active === false)
        if (losesAdmin) await this.#assertAdminMayGo(actor, target, tx)
        if (fields.includes('email') && (await this.#emailHeldByAnother(changes.email, userId, tx))) throw emailTaken()
        const now = nowIso()
        const merged = { ...target, ...definedOnly(changes), updated_at: now }
        const changed = { ...merged, status: statusOf(merged) }
        await this.deps.userStore.update(userId, { ...changes, ...derived(changed) }, now, tx)
        if (changes.is_active === false && target.is_active) for (const ending of this.#endings) await ending(userId, 'deactivated', tx)
        await this.#announce(tx, { type: 'account_changed', user_id: userId, fields })
        return toUser(changed)
      })
    } catch (error) {
      throw error instanceof UniqueViolation ? await this.#taken(changes.email, userId) : error
    }
  }

  setActive(actor: User, userId: string, is_active: boolean): Promise<User> {
    return this.update(actor, userId, undefined, { is_active })
  }

  /** Registers what a domain lets go of when an account is deleted (and again if the deletion is repeated). */
  onDeleted(letGo: LetGoWhileDeleted): void {
    this.#onDeleted.push(letGo)
  }

  /** Registers what a domain lets go of when an account is erased, before its row goes. */
  onErase(letGo: LetGo): void {
    this.#onErase.push(letGo)
  }

  /** Registers what a domain does, in the same transaction, when an account is deactivated or starts being deleted. */
  onEnded(ending: Ending): void {
    this.#endings.push(ending)
  }

  /**
   * Deletes an account, restorably. At once, in one transaction: the rules are checked, the
   * account is marked deleted (and inactive) and its sessions end (and say so). Then each domain
   * lets go of what a live account holds, in batches. Deleting a deleted account repeats only
   * that, so a deletion cut short is finished by deleting again.
   */
  async delete(actor: User, userId: string): Promise<User> {
    const deleted = await this.deps.db.transaction(async (tx) => {
      const target = await this.#require(userId, tx)
      if (target.deleted_at) return target
      if (target.user_role === 'admin' && target.is_active) await this.#assertAdminMayGo(actor, target, tx)
      const now = nowIso()
      await this.deps.userStore.update(userId, { is_active: false, deleted_at: now }, now, tx)
      for (const ending of this.#endings) await ending(userId, 'deleted', tx)
      await this.#announce(tx, { type: 'account_deleted', user_id: userId })
      return { ...target, is_active: false, deleted_at: now, status: 'deleted' as const, updated_at: now }
    })
    await this.#letGoOfLiveThings(userId)
    return toUser(deleted)
  }

  /**
   * For a change another part of the accounts domain makes in `tx` (its linked accounts): the
   * account must be live (404; 409 user_deleted), its updated_at moves, and account_changed says
   * which fields changed.
   */
  async recordChange(userId: string, fields: string[], tx: Transaction): Promise<void> {
    const target = await this.#require(userId, tx)
    if (target.deleted_at) throw userDeleted()
    await this.deps.userStore.update(userId, {}, nowIso(), tx)
    await this.#announce(tx, { type: 'account_changed', user_id: userId, fields })
  }

  /**
   * The account's new avatar, or none, in the avatars domain's transaction `tx`, and account_changed
   * says so. A deleted account gets no new picture, but an admin may still take one away.
   */
  async setAvatarUrl(userId: string, avatarUrl: string | null, tx: Transaction): Promise<User> {
    const target = await this.#require(userId, tx)
    if (target.deleted_at && avatarUrl !== null) throw userDeleted()
    const now = nowIso()
    await this.deps.userStore.update(userId, { avatar_url: avatarUrl }, now, tx)
    await this.#announce(tx, { type: 'account_changed', user_id: userId, fields: ['avatar_url'] })
    return toUser({ ...target, avatar_url: avatarUrl, updated_at: now })
  }

  /** Brings a deleted account back, active, with its name, profile and history; not its sessions, and not once its erasure has begun. */
  async restore(userId: string): Promise<User> {
    return this.deps.db.transaction(async (tx) => {
      const notDeleted = () => conflict('not_deleted', 'Only a deleted account can be restored')
      const target = await this.#require(userId, tx)
      if (!target.deleted_at) throw notDeleted()
      const now = nowIso()
      if (!(await this.deps.userStore.restore(userId, now, tx))) {
        // Another restore, or an erasure, came first: read again to say which.
        if (!(await this.#require(userId, tx)).deleted_at) throw notDeleted()
        throw conflict('erasure_under_way', 'The account is being erased; it cannot come back')
      }
      await this.#announce(tx, { type: 'account_restored', user_id: userId })
      return toUser({ ...target, is_active: true, deleted_at: null, status: 'active', updated_at: now })
    })
  }

  /**
   * Erases an account for good: deleted first if it is not yet (by `actor`; for the purge, the
   * deletion's steps are finished, in case they were cut short), then marked as being erased, so
   * that it can no longer be restored half-erased; then each domain lets go of the rest in
   * batches (a user may have written 200,000 messages; their room messages stay, by "a deleted
   * user"), and the row goes, with what is left by cascade. An erasure cut short is finished by
   * the next one, or by the purge.
   */
  async erase(actor: User | undefined, userId: string): Promise<void> {
    const { db, userStore } = this.deps
    if (actor) await this.delete(actor, userId)
    else await this.#letGoOfLiveThings(userId)
    if (!(await userStore.markErasing(userId, nowIso(), db))) {
      if (await userStore.findById(userId, db)) throw conflict('reactivated_during_deletion', 'The account was restored meanwhile; delete it again')
      throw notFound('User not found')
    }
    for (const letGo of this.#onErase) await letGo(userId)
    await db.transaction(async (tx) => {
      if (await userStore.erase(userId, tx)) await this.#announce(tx, { type: 'account_erased', user_id: userId })
    })
  }

  /**
   * Erases accounts deleted more than `afterSeconds` ago (USER_PURGE_AFTER), oldest first, one at a
   * time; answers how many. One restored meanwhile stays; any other failure stops the purge until
   * its next run, and is thrown to be logged.
   */
  async purgeDeleted(afterSeconds: number, now = Date.now()): Promise<number> {
    const { db, userStore } = this.deps
    const before = isoAfter(-afterSeconds, now)
    let erased = 0
    for (;;) {
      const due = await userStore.deletedBefore(before, PURGE_BATCH, db)
      for (const userId of due) {
        await this.erase(undefined, userId).then(
          () => erased++,
          (error) => {
            if (!(error instanceof ApiError && error.reason === 'reactivated_during_deletion')) throw error
          },
        )
        await nextTurn()
      }
      if (due.length < PURGE_BATCH) return erased
    }
  }

  /**
   * Gives the deployment its first admin from ADMIN_USERNAME and ADMIN_PASSWORD, once: the first
   * start creates it (or finds it there) and records that in the store, and later starts leave
   * accounts alone, so an admin deleted or renamed on purpose does not come back with the password
   * from the environment. Answers what it did; `not_an_active_admin` means the name belongs to
   * another kind of account, which the operator's password would not open.
   */
  async bootstrapAdmin(username: string, password: string): Promise<'created' | 'exists' | 'done_before' | 'not_an_active_admin'> {
    if ((await readSetting(this.deps.db, ADMIN_BOOTSTRAPPED)) !== undefined) return 'done_before'
    const existing = await this.deps.userStore.findByUsername(username, this.deps.db)
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
    await getOrCreateSetting(this.deps.db, ADMIN_BOOTSTRAPPED, () => recorded)
    return existing ? 'exists' : 'created'
  }

  /** An admin never removes themself, and the last active admin never goes. */
  async #assertAdminMayGo(actor: User, target: UserRecord, tx: Transaction): Promise<void> {
    if (actor.user_id === target.user_id)
      throw conflict('self_target', 'An admin cannot delete, deactivate or demote themself')
    // Serialise admin removals so that two at once cannot both see the other as the remaining admin.
    await tx.lock('active-admins')
    if ((await this.deps.userStore.countActiveAdmins(tx)) <= 1) throw conflict('last_admin', 'The last active admin cannot be removed')
  }

  /** The deletion's steps; each stops where the account turns out to have been restored meanwhile. */
  async #letGoOfLiveThings(userId: string): Promise<void> {
    const stillDeleted = async (q: Queryable) => Boolean((await this.deps.userStore.findById(userId, q))?.deleted_at)
    for (const letGo of this.#onDeleted) await letGo(userId, stillDeleted)
  }

  /** An account's own event, on its stream and on the stream of account changes other services follow. */
  async #announce(tx: Transaction, event: LobbyEvent & { user_id: string }): Promise<void> {
    await this.deps.events.emit(tx, [userStream(event.user_id), event], [ACCOUNTS_STREAM, event])
  }

  /** Whether an account other than `ownerId`'s holds the address, ignoring case. */
  async #emailHeldByAnother(email: string | null | undefined, ownerId: string | undefined, q: Queryable): Promise<boolean> {
    const key = emailKey(email)
    const holder = key && (await this.deps.userStore.findIdByEmailKey(key, q))
    return Boolean(holder) && holder !== ownerId
  }

  /** Which of the two unique values a write that lost a race to another account collided on. */
  async #taken(email: string | null | undefined, ownerId: string | undefined): Promise<ApiError> {
    return (await this.#emailHeldByAnother(email, ownerId, this.deps.db)) ? emailTaken() : usernameTaken()
  }

  async #require(userId: string, q: Queryable): Promise<UserRecord> {
    const user = await this.deps.userStore.findById(userId, q)
    if (!user) throw notFound('User not found')
    return user
  }
}

const ADMIN_BOOTSTRAPPED = 'admin_bootstrapped'
/** Accounts the purge reads at a time; each is then erased on its own. */
const PURGE_BATCH = 100

/** The password hash of an account that has no password: no argon2id hash is empty, so nothing verifies against it. */
export const NO_PASSWORD = ''

function usernameTaken(): ApiError {
  return conflict('username_taken', 'This username is already taken')
}

function userDeleted(): ApiError {
  return conflict('user_deleted', 'The account is deleted; restore it first')
}

function emailTaken(): ApiError {
  return conflict('email_taken', 'This email address belongs to another account')
}

const NO_PROFILE = Object.fromEntries(PROFILE_FIELDS.map((field) => [field, null])) as { [Field in keyof Profile]: null }

/** What the store keeps beside the profile, from the account as it now is. */
const derived = (user: User): { email_key: string | null; search_text: string } => ({ email_key: emailKey(user.email), search_text: searchTextOf(user) })

/** The fields `changes` would change on `target`. */
function changedFields(target: UserRecord, changes: UserChanges): string[] {
  return Object.entries(definedOnly(changes))
    .filter(([field, value]) => target[field as keyof UserChanges] !== value)
    .map(([field]) => field)
}

function definedOnly<Shape extends object>(value: Shape): Partial<Shape> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<Shape>
}
