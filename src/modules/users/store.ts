import type { Database, Queryable, SqlValue } from '../../db/database'
import { readPage } from '../../db/page'
import { Where } from '../../db/where'
import { PAGE_SIZE } from '../../shared/model'
import { PROFILE_FIELDS, type User, type UserFilter } from './model'

type UserRow = Omit<User, 'is_active' | 'status'> & { is_active: boolean | number }

export interface UserRecord extends User {
  password_hash: string
}

/** A new account's row: the account, and what the store keeps to find it by. */
export type NewUser = UserRecord & Derived

/** Columns the service keeps in step with the profile: the address in lower case, and the text a search matches. */
interface Derived {
  email_key: string | null
  search_text: string
}

const USER_COLUMNS = ['user_id', 'username', 'user_role', 'is_active', 'created_at', 'updated_at', 'deleted_at', ...PROFILE_FIELDS, 'avatar_url']
const COLUMNS = [...USER_COLUMNS, 'password_hash'].join(', ')
const PUBLIC_COLUMNS = USER_COLUMNS.join(', ')
const UPDATABLE = ['username', 'user_role', 'is_active', 'deleted_at', 'password_hash', ...PROFILE_FIELDS, 'avatar_url', 'email_key', 'search_text'] as const

export type UserUpdate = Partial<Pick<NewUser, (typeof UPDATABLE)[number]>>

/** The columns of an account (no password hash) as `alias`.column, for a store that reads one with a join. */
export const userColumns = (alias: string) => USER_COLUMNS.map((column) => `${alias}.${column}`).join(', ')

/** An account from its row: SQLite answers booleans as 0/1, converted here, once. */
export function fromRow<Row extends UserRow>(row: Row): Row & Pick<User, 'is_active' | 'status'> {
  const is_active = Boolean(row.is_active)
  return { ...row, is_active, status: statusOf({ is_active, deleted_at: row.deleted_at }) }
}

export const statusOf = ({ is_active, deleted_at }: Pick<User, 'is_active' | 'deleted_at'>): User['status'] =>
  deleted_at ? 'deleted' : is_active ? 'active' : 'inactive'

/** Public view of a user: everything but the password hash. */
export function toUser({ password_hash: _, ...user }: UserRecord): User {
  return user
}

export class UserStore {
  constructor(private readonly db: Database) {}

  async findById(userId: string, q: Queryable): Promise<UserRecord | undefined> {
    const row = await q.get<UserRecord>(`SELECT ${COLUMNS} FROM users WHERE user_id = $1`, [userId])
    return row && fromRow(row)
  }

  async findByUsername(username: string, q: Queryable): Promise<UserRecord | undefined> {
    const row = await q.get<UserRecord>(`SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1)`, [username])
    return row && fromRow(row)
  }

  /** The id of the account holding an address, ignoring case. */
  async findIdByEmailKey(emailKey: string, q: Queryable): Promise<string | undefined> {
    return (await q.get<{ user_id: string }>('SELECT user_id FROM users WHERE email_key = $1', [emailKey]))?.user_id
  }

  /** Throws UniqueViolation when the username or the address is taken, whatever its case. */
  async insert(user: NewUser, q: Queryable): Promise<void> {
    const columns = [...USER_COLUMNS, 'password_hash', 'email_key', 'search_text'] as (keyof NewUser)[]
    await q.run(
      `INSERT INTO users (${columns.join(', ')}) VALUES (${columns.map((_, index) => `$${index + 1}`).join(', ')})`,
      columns.map((column) => user[column] as SqlValue),
    )
  }

  async update(userId: string, changes: UserUpdate, updatedAt: string, q: Queryable): Promise<void> {
    const columns = UPDATABLE.filter((column) => changes[column] !== undefined)
    const params: SqlValue[] = [userId, updatedAt, ...columns.map((column) => changes[column] as SqlValue)]
    const set = columns.map((column, index) => `${column} = $${index + 3}`)
    await q.run(`UPDATE users SET ${['updated_at = $2', ...set].join(', ')} WHERE user_id = $1`, params)
  }

  /** Marks a deleted account as being erased (it can no longer be restored); false when it is not deleted. */
  async markErasing(userId: string, now: string, q: Queryable): Promise<boolean> {
    return (await q.run('UPDATE users SET erasing_since = COALESCE(erasing_since, $2) WHERE user_id = $1 AND deleted_at IS NOT NULL', [userId, now])) > 0
  }

  /** Brings a deleted account back, active, unless its erasure has begun; answers whether it did. */
  async restore(userId: string, now: string, q: Queryable): Promise<boolean> {
    return (
      (await q.run(
        'UPDATE users SET is_active = $2, deleted_at = NULL, updated_at = $3 WHERE user_id = $1 AND deleted_at IS NOT NULL AND erasing_since IS NULL',
        [userId, true, now],
      )) > 0
    )
  }

  /** Erases the account if it is deleted; answers whether it did. */
  async erase(userId: string, q: Queryable): Promise<boolean> {
    return (await q.run('DELETE FROM users WHERE user_id = $1 AND deleted_at IS NOT NULL', [userId])) > 0
  }

  /** Up to `limit` accounts deleted before `before`, oldest first: the purge's next batch. */
  async deletedBefore(before: string, limit: number, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ user_id: string }>('SELECT user_id FROM users WHERE deleted_at < $1 ORDER BY deleted_at LIMIT $2', [before, limit])
    return rows.map((row) => row.user_id)
  }

  async countByStatus(): Promise<{ active: number; inactive: number; deleted: number }> {
    const rows = await this.db.all<{ is_active: boolean | number; is_deleted: boolean | number; total: number }>(
      'SELECT is_active, is_deleted, CAST(sum(total) AS INTEGER) AS total FROM user_counts GROUP BY is_active, is_deleted',
    )
    const total = (matches: (row: { active: boolean; deleted: boolean }) => boolean) =>
      rows.filter((row) => matches({ active: Boolean(row.is_active), deleted: Boolean(row.is_deleted) })).reduce((sum, row) => sum + Number(row.total), 0)
    return {
      active: total(({ active, deleted }) => active && !deleted),
      inactive: total(({ active, deleted }) => !active && !deleted),
      deleted: total(({ deleted }) => deleted),
    }
  }

  async countActiveAdmins(q: Queryable): Promise<number> {
    const row = await q.get<{ total: number }>(
      "SELECT CAST(count(*) AS INTEGER) AS total FROM users WHERE user_role = 'admin' AND is_active = $1",
      [true],
    )
    return row?.total ?? 0
  }

  /** Deleted accounts only when `status` asks for them; `is_active` and `status` never disagree with each other. */
  async list(filter: UserFilter): Promise<{ users: User[]; total: number }> {
    const deleted = filter.status === 'deleted'
    const active = filter.status === 'active' || (filter.status === 'inactive' ? false : filter.is_active)
    // The same conditions over users and over user_counts, which spell "deleted" differently.
    const where = (deletedFlag: string) => {
      const where = new Where().add(`${deletedFlag} = ?`, deleted)
      if (active !== undefined) where.add('is_active = ?', active)
      if (filter.role !== undefined) where.add('user_role = ?', filter.role)
      if (filter.search) where.add("search_text LIKE ? ESCAPE '\\'", `%${escapeLike(filter.search.toLowerCase())}%`)
      return where
    }
    const users = where('(deleted_at IS NOT NULL)')
    // Role and status alone are counted by triggers (migrations 4 and 17); a search has to look at every name.
    const count = filter.search
      ? `SELECT CAST(count(*) AS INTEGER) AS total FROM users ${users}`
      : `SELECT CAST(COALESCE(sum(total), 0) AS INTEGER) AS total FROM user_counts ${where('is_deleted')}`
    const page = await readPage<UserRow>(
      this.db.reader,
      { rows: `SELECT ${PUBLIC_COLUMNS} FROM users ${users} ORDER BY created_at DESC, user_id DESC`, count, params: users.params },
      filter.limit ?? PAGE_SIZE,
      filter.offset ?? 0,
    )
    return { users: page.rows.map(fromRow), total: page.total }
  }
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`)
}
