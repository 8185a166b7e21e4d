import { type Database, type Queryable, type Transaction, UniqueViolation } from '../../db/database'
import type { UserRateLimiter } from '../../db/rate-limits'
import { nowIso } from '../../lib/clock'
import { conflict, notFound } from '../../shared/errors'
import type { LinkAccountRequest, LinkedAccount, User } from './model'
import { canonicalLink } from './networks'
import type { LinkedAccountStore } from './linked-account-store'
import type { UserService } from './service'

/**
 * Accounts on other networks linked to a user's (the family users service's linked accounts): one
 * per network and user, and one user per account of a network, since a sign-in with it (issue 22)
 * must find exactly one. The user changes theirs (counted against ACCOUNT_RATE_LIMIT), an admin
 * anyone's but a deleted account's; each change is an account_changed event.
 */
export class LinkedAccountService {
  constructor(
    private readonly deps: {
      db: Database
      store: LinkedAccountStore
      users: Pick<UserService, 'recordChange' | 'get'>
      /** ACCOUNT_RATE_LIMIT: changes one user makes to their own account. */
      selfChanges: UserRateLimiter
    },
  ) {}

  list(userId: string): Promise<LinkedAccount[]> {
    return this.deps.store.list(userId, this.deps.db)
  }

  /** The account as its owner (or an admin) sees it whole: with its linked accounts. */
  async withLinks(user: User): Promise<User> {
    return { ...user, linked_accounts: await this.list(user.user_id) }
  }

  /** Another user's, for an admin: 404 for an account that does not exist. */
  async listOf(userId: string): Promise<LinkedAccount[]> {
    await this.deps.users.get(userId)
    return this.list(userId)
  }

  async link(actor: User, userId: string, { social_network, connection_link, connected_for = '' }: LinkAccountRequest, linkedAccountId = Bun.randomUUIDv7()): Promise<LinkedAccount> {
    const account: LinkedAccount = {
      linked_account_id: linkedAccountId,
      social_network,
      connection_link: canonicalLink(social_network, connection_link),
      connected_for,
      connected_at: nowIso(),
    }
    await this.#counted(actor, userId)
    try {
      return await this.#changing(userId, async (tx) => {
        await this.#assertFree(userId, account, tx)
        await this.deps.store.insert(userId, account, tx)
        return account
      })
    } catch (error) {
      if (!(error instanceof UniqueViolation)) throw error
      // Lost a race to another link of the same: say which, as the checks above would have.
      await this.#assertFree(userId, account, this.deps.db)
      throw alreadyLinked(social_network)
    }
  }

  async changeReason(actor: User, userId: string, linkedAccountId: string, connectedFor: string): Promise<LinkedAccount> {
    await this.#counted(actor, userId)
    return this.#changing(userId, async (tx) => {
      if (!(await this.deps.store.changeReason(userId, linkedAccountId, connectedFor, tx))) throw linkedAccountNotFound()
      return (await this.deps.store.find(userId, linkedAccountId, tx))!
    })
  }

  async unlink(actor: User, userId: string, linkedAccountId: string): Promise<void> {
    await this.#counted(actor, userId)
    await this.#changing(userId, async (tx) => {
      if (!(await this.deps.store.remove(userId, linkedAccountId, tx))) throw linkedAccountNotFound()
    })
  }

  async #assertFree(userId: string, account: LinkedAccount, q: Queryable): Promise<void> {
    const existing = await this.deps.store.list(userId, q)
    if (existing.some((linked) => linked.social_network === account.social_network))
      throw alreadyLinked(account.social_network)
    const holder = await this.deps.store.holderOf(account.social_network, account.connection_link, q)
    if (holder) throw conflict('link_taken', 'That account is linked to another user')
  }

  /** A change to a live account (404, or 409 user_deleted, first), in one transaction with its account_changed event. */
  #changing<Result>(userId: string, change: (tx: Transaction) => Promise<Result>): Promise<Result> {
    return this.deps.db.transaction(async (tx) => {
      await this.deps.users.recordChange(userId, ['linked_accounts'], tx)
      return change(tx)
    })
  }

  async #counted(actor: User, userId: string): Promise<void> {
    if (actor.user_id === userId) await this.deps.selfChanges.consume(userId)
  }
}

const linkedAccountNotFound = () => notFound('Linked account not found')
const alreadyLinked = (network: string) => conflict('already_linked', `An account on ${network} is linked already; unlink it first`)
