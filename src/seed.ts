import type { AppContext } from './context'

export const DEMO_PASSWORD = 'demo-password'

export const DEMO_USERS = [
  { username: 'demo_admin', user_role: 'admin' },
  { username: 'alice', user_role: 'user' },
  { username: 'bob', user_role: 'user' },
  { username: 'carol', user_role: 'user' },
  { username: 'dave', user_role: 'user' },
  { username: 'erin', user_role: 'user', is_active: false },
] as const

/** Fills an empty database with demo accounts; a database that has any user is left alone. */
export async function seedDemoData({ users, db }: AppContext): Promise<boolean> {
  const existing = await db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM users')
  if ((existing?.total ?? 0) > 0) return false
  for (const user of DEMO_USERS) await users.create({ password: DEMO_PASSWORD, ...user })
  return true
}
