import type { Database, Queryable, SqlValue } from '../../db/database'
import { readPage } from '../../db/page'
import { Where } from '../../db/where'
import { PAGE_SIZE } from '../../shared/model'
import type { User, UserFilter, UserRole } from './model'

interface UserRow {
  user_id: string
  username: string
  password_hash: string
  user_role: UserRole
  is_active: boolean | number
  created_at: string
  updated_at: string
}

export interface UserRecord extends User {
  password_hash: string
}

export type NewUser = UserRecord

const COLUMNS = 'user_id, username, password_hash, user_role, is_active, created_at, updated_at'
const PUBLIC_COLUMNS = 'user_id, username, user_role, is_active, created_at, updated_at'
const UPDATABLE = ['username', 'user_role', 'is_active', 'password_hash'] as const

export type UserUpdate = Partial<Pick<UserRecord, (typeof UPDATABLE)[number]>>

function toRecord(row: UserRow): UserRecord {
  return { ...row, is_active: Boolean(row.is_active) }
}

/** Public view of a user: everything but the password hash. */
export function toUser({ password_hash: _, ...user }: UserRecord): User {
  return user
}

export class UserStore {
  constructor(private readonly db: Database) {}

  async findById(userId: string, q: Queryable): Promise<UserRecord | undefined> {
    const row = await q.get<UserRow>(`SELECT ${COLUMNS} FROM users WHERE user_id = $1`, [userId])
    return row && toRecord(row)
  }

  async findByUsername(username: string, q: Queryable): Promise<UserRecord | undefined> {
    const row = await q.get<UserRow>(`SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1)`, [username])
    return row && toRecord(row)
  }

  /** Throws UniqueViolation when the username is taken, whatever its case. */
  async insert(user: NewUser, q: Queryable): Promise<void> {
    await q.run(`INSERT INTO users (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      user.user_id,
      user.username,
      user.password_hash,
      user.user_role,
      user.is_active,
      user.created_at,
      user.updated_at,
    ])
  }

  async update(userId: string, changes: UserUpdate, updatedAt: string, q: Queryable): Promise<void> {
    const columns = UPDATABLE.filter((column) => changes[column] !== undefined)
    const params: SqlValue[] = [userId, updatedAt, ...columns.map((column) => changes[column] as SqlValue)]
    const set = columns.map((column, index) => `${column} = $${index + 3}`)
    await q.run(`UPDATE users SET ${['updated_at = $2', ...set].join(', ')} WHERE user_id = $1`, params)
  }

  /** Deletes the account if it is inactive; answers whether it did. */
  async deleteInactive(userId: string, q: Queryable): Promise<boolean> {
    return (await q.run('DELETE FROM users WHERE user_id = $1 AND NOT is_active', [userId])) > 0
  }

  async countByStatus(): Promise<{ active: number; inactive: number }> {
    const rows = await this.db.all<{ is_active: boolean | number; total: number }>(
      'SELECT is_active, CAST(sum(total) AS INTEGER) AS total FROM user_counts GROUP BY is_active',
    )
    const total = (active: boolean) => rows.find((row) => Boolean(row.is_active) === active)?.total ?? 0
    return { active: total(true), inactive: total(false) }
  }

  async countActiveAdmins(q: Queryable): Promise<number> {
    const row = await q.get<{ total: number }>(
      "SELECT CAST(count(*) AS INTEGER) AS total FROM users WHERE user_role = 'admin' AND is_active = $1",
      [true],
    )
    return row?.total ?? 0
  }

  async list(filter: UserFilter): Promise<{ users: User[]; total: number }> {
    const where = new Where()
    if (filter.is_active !== undefined) where.add('is_active = ?', filter.is_active)
    if (filter.role !== undefined) where.add('user_role = ?', filter.role)
    if (filter.search) where.add("lower(username) LIKE ? ESCAPE '\\'", `%${escapeLike(filter.search.toLowerCase())}%`)
    const whereClause = String(where)
    const { params } = where
    // Role and status alone are counted by the triggers of migration 4; a search has to look at every name.
    const count = filter.search
      ? `SELECT CAST(count(*) AS INTEGER) AS total FROM users ${whereClause}`
      : `SELECT CAST(COALESCE(sum(total), 0) AS INTEGER) AS total FROM user_counts ${whereClause}`
    const page = await readPage<Omit<UserRow, 'password_hash'>>(
      this.db.reader,
      { rows: `SELECT ${PUBLIC_COLUMNS} FROM users ${whereClause} ORDER BY created_at DESC, user_id DESC`, count, params },
      filter.limit ?? PAGE_SIZE,
      filter.offset ?? 0,
    )
    return { users: page.rows.map((row) => ({ ...row, is_active: Boolean(row.is_active) })), total: page.total }
  }
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`)
}
