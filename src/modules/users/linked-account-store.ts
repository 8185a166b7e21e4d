import type { Queryable } from '../../db/database'
import type { LinkedAccount } from './model'

const COLUMNS = 'linked_account_id, social_network, connection_link, connected_for, connected_at'

export class LinkedAccountStore {
  /** A user's linked accounts, in the order they were linked (at most one per network). */
  list(userId: string, q: Queryable): Promise<LinkedAccount[]> {
    return q.all<LinkedAccount>(`SELECT ${COLUMNS} FROM linked_accounts WHERE user_id = $1 ORDER BY connected_at, linked_account_id`, [userId])
  }

  find(userId: string, linkedAccountId: string, q: Queryable): Promise<LinkedAccount | undefined> {
    return q.get<LinkedAccount>(`SELECT ${COLUMNS} FROM linked_accounts WHERE user_id = $1 AND linked_account_id = $2`, [userId, linkedAccountId])
  }

  /** Who holds a network's account at `link`, if anyone: a sign-in with it finds this user. */
  async holderOf(network: string, link: string, q: Queryable): Promise<{ user_id: string; linked_account_id: string } | undefined> {
    return q.get('SELECT user_id, linked_account_id FROM linked_accounts WHERE social_network = $1 AND connection_link = $2', [network, link])
  }

  /** Throws UniqueViolation when the user has an account of that network, or another user has that link. */
  async insert(userId: string, account: LinkedAccount, q: Queryable): Promise<void> {
    await q.run(`INSERT INTO linked_accounts (user_id, ${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, [
      userId,
      account.linked_account_id,
      account.social_network,
      account.connection_link,
      account.connected_for,
      account.connected_at,
    ])
  }

  async changeReason(userId: string, linkedAccountId: string, connectedFor: string, q: Queryable): Promise<boolean> {
    return (await q.run('UPDATE linked_accounts SET connected_for = $3 WHERE user_id = $1 AND linked_account_id = $2', [userId, linkedAccountId, connectedFor])) > 0
  }

  async remove(userId: string, linkedAccountId: string, q: Queryable): Promise<boolean> {
    return (await q.run('DELETE FROM linked_accounts WHERE user_id = $1 AND linked_account_id = $2', [userId, linkedAccountId])) > 0
  }
}
