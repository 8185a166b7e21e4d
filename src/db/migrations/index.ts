import type { Database, Dialect } from '../database'
import type { ColumnTypes, Migration } from './migration'
import m001 from './001-accounts-and-sessions'
import m002 from './002-rooms-and-invitations'
import m003 from './003-list-indexes-that-match-the-list-order'
import m004 from './004-user-counts-kept-by-triggers'
import m005 from './005-sessions-by-expiry'
import m006 from './006-per-user-rate-limits-and-room-quotas'
import m007 from './007-invitations-by-last-change'
import m008 from './008-the-event-log'
import m009 from './009-room-chat'
import m010 from './010-presence'
import m011 from './011-direct-messages-and-blocks'
import m012 from './012-the-edits-of-each-message'
import m013 from './013-indexes-for-deleting-a-user-and-reaping-presence'
import m014 from './014-open-seats-by-user'
import m015 from './015-log-positions'
import m016 from './016-profiles'
import m017 from './017-soft-deletion'
import m018 from './018-indexes-for-exporting-a-user'
import m019 from './019-linked-accounts'
import m020 from './020-erasures-under-way'
import m021 from './021-avatars'
import m022 from './022-qr-login-requests'
import m023 from './023-identities-and-oauth-states'
import m024 from './024-relay-positions'
import m025 from './025-qr-login-encryption-keys'
import m026 from './026-presence-by-instance'

const COLUMN_TYPES: Record<Dialect, ColumnTypes> = {
  sqlite: { boolean: 'INTEGER' },
  postgres: { boolean: 'BOOLEAN' },
}

// Timestamps are ISO-8601 UTC text with milliseconds: they sort and compare as text on both stores.
const MIGRATIONS: Migration[] = [m001, m002, m003, m004, m005, m006, m007, m008, m009, m010, m011, m012, m013, m014, m015, m016, m017, m018, m019, m020, m021, m022, m023, m024, m025, m026]

/** Every version of the schema, in order. */
export const SCHEMA_VERSIONS = MIGRATIONS.map((migration) => migration.version)

/** Applies every migration the store has not seen yet, once, even with several instances starting at once. */
export async function migrate(db: Database): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.lock('schema_migrations')
    await tx.run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    )
    const rows = await tx.all<{ version: number }>('SELECT version FROM schema_migrations')
    const applied = new Set(rows.map((row) => row.version))
    const pending = MIGRATIONS.filter((migration) => !applied.has(migration.version))
    for (const migration of pending) {
      for (const statement of migration.statements(COLUMN_TYPES[db.dialect], db.dialect)) await tx.run(statement)
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        new Date().toISOString(),
      ])
    }
    return pending.map((migration) => migration.version)
  })
}
