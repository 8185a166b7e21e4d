import type { Database, Queryable } from './database'

export async function readSetting(db: Queryable, key: string): Promise<string | undefined> {
  return (await db.get<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key]))?.value
}

/** Values the service generates once and keeps, such as the JWT secret when none is configured. */
export async function getOrCreateSetting(db: Database, key: string, create: () => string): Promise<{ value: string; created: boolean }> {
  const candidate = create()
  const inserted = await db.run('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, candidate])
  const row = await db.get<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key])
  if (!row) throw new Error(`setting ${key} vanished right after it was written`)
  return { value: row.value, created: inserted === 1 }
}
