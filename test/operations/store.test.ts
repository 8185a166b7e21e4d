import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config'
import { openDatabase } from '../../src/db/database'
import { migrate, SCHEMA_VERSIONS } from '../../src/db/migrations'
import { createLogger } from '../../src/lib/logger'
import { prepare } from '../../src/server'
import { closeTestResources, createClient, createTestApp, freshDatabaseUrl, onlyOn, STORE, TEST_DATABASE_URL, TEST_ENV } from '../support/harness'

afterAll(closeTestResources)

const directory = mkdtempSync(join(tmpdir(), 'sgw-store-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

async function boot(databaseUrl: string, env: Record<string, string> = {}) {
  const config = loadConfig({ ...TEST_ENV, DATABASE_URL: databaseUrl, ...env })
  const { app, context } = await prepare(config, createLogger('silent'))
  return { context, client: createClient((request) => app.handle(request)) }
}

describe(`store on ${STORE}`, () => {
  test('data, sessions and the generated JWT secret survive a restart; migrations run once', async () => {
    const url = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(directory, 'restart.sqlite')}`
    const withoutSecret = { JWT_SECRET: '' }
    const first = await boot(url, withoutSecret)
    const user = await first.client.register('durable_user')
    await first.context.db.close()

    const second = await boot(url, withoutSecret)
    expect((await second.client.get('/auth/me', user.access)).body.username).toBe('durable_user')
    expect((await second.client.post('/auth/refresh', { refresh_token: user.refresh })).status).toBe(200)
    const versions = await second.context.db.all<{ version: number }>('SELECT version FROM schema_migrations')
    expect(versions.map((row) => Number(row.version)).sort((a, b) => a - b)).toEqual(SCHEMA_VERSIONS)
    expect(await migrate(second.context.db)).toEqual([])
    await second.context.db.close()
  })

  test('each migration is a file named by its version, the versions 1, 2, 3... in order', async () => {
    const files = (await Array.fromAsync(new Bun.Glob('[0-9][0-9][0-9]-*.ts').scan('src/db/migrations'))).sort()
    expect(files.map((file) => Number(file.slice(0, 3)))).toEqual(SCHEMA_VERSIONS)
    expect(SCHEMA_VERSIONS).toEqual(SCHEMA_VERSIONS.map((_, index) => index + 1))
  })

  test('two instances migrating one empty database at once apply each migration exactly once', async () => {
    const url = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(directory, 'race.sqlite')}`
    const instances = [0, 1].map(() => Bun.spawn([process.execPath, 'test/support/migrate-once.ts', url], { stdout: 'pipe', stderr: 'inherit' }))
    const outputs = await Promise.all(instances.map((child) => new Response(child.stdout).text()))
    expect(await Promise.all(instances.map((child) => child.exited))).toEqual([0, 0])
    expect(outputs.flatMap((output) => JSON.parse(output)).sort((a: number, b: number) => a - b)).toEqual(SCHEMA_VERSIONS)
  })

  test.if(onlyOn('sqlite', "SQLite's own settings"))('SQLite runs in WAL mode with full sync, a busy timeout and foreign keys', async () => {
    const db = await openDatabase(`sqlite:${join(directory, 'pragmas.sqlite')}`, 1)
    const pragma = async (name: string) => Object.values((await db.get<Record<string, unknown>>(`PRAGMA ${name}`)) ?? {})[0]
    expect(await pragma('journal_mode')).toBe('wal')
    expect(await pragma('synchronous')).toBe(2)
    expect(await pragma('busy_timeout')).toBe(5000)
    expect(await pragma('foreign_keys')).toBe(1)
    await db.close()
  })

  test.if(onlyOn('sqlite', "the SQLite data folder's permissions"))('the data folder it creates is 0700 and its files are 0600, even a file made 0644 before (SECURITY 25)', async () => {
    const folder = join(directory, 'private', 'data')
    const db = await openDatabase(`sqlite:${join(folder, 'gateway.sqlite')}`, 1)
    await migrate(db)
    const mode = (path: string) => statSync(path).mode & 0o777
    expect(mode(folder)).toBe(0o700)
    for (const file of ['gateway.sqlite', 'gateway.sqlite-wal', 'gateway.sqlite-shm'])
      expect({ file, mode: mode(join(folder, file)) }).toEqual({ file, mode: 0o600 })
    await db.close()

    const loose = join(directory, 'loose.sqlite')
    writeFileSync(loose, '', { mode: 0o644 })
    const reopened = await openDatabase(`sqlite:${loose}`, 1)
    expect(mode(loose)).toBe(0o600)
    await reopened.close()
  })

  test('a transaction that throws leaves nothing behind, and nobody sees its work meanwhile', async () => {
    const db = await openDatabase(await freshDatabaseUrl(), 2)
    await migrate(db)
    const insert = "INSERT INTO settings (key, value) VALUES ($1, 'v')"
    await expect(
      db.transaction(async (tx) => {
        await tx.run(insert, ['rolled_back'])
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await db.get('SELECT key FROM settings WHERE key = $1', ['rolled_back'])).toBeUndefined()

    // A read issued while another transaction holds uncommitted work must not see it (that work is then rolled back).
    let release!: () => void
    const held = db.transaction(async (tx) => {
      await tx.run(insert, ['uncommitted'])
      await new Promise<void>((resolve) => (release = resolve))
      throw new Error('rolled back after the read was issued')
    })
    await Bun.sleep(20)
    const outside = db.get<{ key: string }>('SELECT key FROM settings WHERE key = $1', ['uncommitted'])
    release()
    await expect(held).rejects.toThrow('rolled back')
    expect(await outside).toBeUndefined()
    await db.close()
  })
})

describe(`store on ${STORE}: upgrading a database in service`, () => {
  test('migrations 4 and 17 count the users that already exist, and keep counting after', async () => {
    const db = await openDatabase(await freshDatabaseUrl(), 2)
    await migrate(db)
    // Back to version 3 for the counts, as a database in service before they were written.
    const undo =
      db.dialect === 'sqlite'
        ? ['DROP TRIGGER users_counted_on_insert', 'DROP TRIGGER users_counted_on_delete', 'DROP TRIGGER users_counted_on_update']
        : ['DROP TRIGGER users_counted ON users', 'DROP FUNCTION users_counted()', 'DROP FUNCTION user_counts_add(TEXT, BOOLEAN, BOOLEAN, INTEGER)']
    for (const statement of [
      ...undo,
      'DROP TABLE user_counts',
      'DROP INDEX users_deleted',
      'ALTER TABLE users DROP COLUMN deleted_at',
      'DELETE FROM schema_migrations WHERE version IN (4, 17)',
    ])
      await db.run(statement)
    const addUser = (name: string, role: string, active: boolean) =>
      db.run(
        "INSERT INTO users (user_id, username, password_hash, user_role, is_active, created_at, updated_at) VALUES ($1, $2, 'x', $3, $4, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        [Bun.randomUUIDv7(), name, role, active],
      )
    for (const [name, role, active] of [
      ['old_a', 'user', true],
      ['old_b', 'user', true],
      ['old_c', 'user', false],
      ['old_d', 'admin', true],
    ] as const)
      await addUser(name, role, active)

    expect(await migrate(db)).toEqual([4, 17])
    await addUser('new_e', 'admin', true)
    const counts = async (table: string) =>
      (
        await db.all<{ user_role: string; is_active: boolean | number; total: number }>(
          table === 'users'
            ? 'SELECT user_role, is_active, CAST(count(*) AS INTEGER) AS total FROM users GROUP BY user_role, is_active'
            : 'SELECT user_role, is_active, CAST(sum(total) AS INTEGER) AS total FROM user_counts GROUP BY user_role, is_active HAVING sum(total) > 0',
        )
      )
        .map((row) => `${row.user_role}/${Boolean(row.is_active)}=${Number(row.total)}`)
        .sort()
    expect(await counts('user_counts')).toEqual(['admin/true=2', 'user/false=1', 'user/true=2'])
    expect(await counts('user_counts')).toEqual(await counts('users'))
    await db.close()
  })
})

describe(`store on ${STORE}: migration 12`, () => {
  test('records the edits of messages edited before it, so that deleting one blanks them all', async () => {
    const { client, context } = await createTestApp()
    const owner = await client.register('old_editor')
    const room = (await client.post('/rooms', { room_name: 'Old chat' }, owner.access)).body
    const path = `/rooms/${room.room_id}/messages`
    const message = (await client.post(path, { body: 'first words' }, owner.access)).body
    for (const body of ['second words', 'third words']) await client.call('PATCH', `${path}/${message.message_id}`, { token: owner.access, body: { body } })
    const edits = () => context.db.all<{ seq: number }>('SELECT seq FROM message_edits WHERE message_id = $1 ORDER BY seq', [message.message_id])
    const recorded = (await edits()).map((row) => Number(row.seq))
    expect(recorded).toEqual([message.seq + 1, message.seq + 2])
    // Back to version 11, as a database in service before this migration was written.
    await context.db.run('DROP TABLE message_edits')
    await context.db.run('DELETE FROM schema_migrations WHERE version = 12')
    expect(await migrate(context.db)).toEqual([12])
    expect((await edits()).map((row) => Number(row.seq))).toEqual(recorded)
    expect((await client.delete(`${path}/${message.message_id}`, owner.access)).status).toBe(200)
    const bodies = await context.db.all<{ payload: string }>("SELECT payload FROM events WHERE stream = $1 AND type <> 'member_joined' ORDER BY seq", [`chat:${room.room_id}`])
    expect(bodies.map((row) => JSON.parse(row.payload).body)).toEqual(['', '', '', undefined])
  })
})

describe(`store on ${STORE}: migration 14`, () => {
  test("marks the seats of rooms closed before it, so that a user's open rooms are found among their seats", async () => {
    const { client, context } = await createTestApp()
    const owner = await client.register('old_seats')
    const open = (await client.post('/rooms', { room_name: 'Still open' }, owner.access)).body
    const closed = (await client.post('/rooms', { room_name: 'Closed long ago' }, owner.access)).body
    await client.post(`/rooms/${closed.room_id}/close`, undefined, owner.access)
    // Back to version 13, as a database in service before this migration was written.
    await context.db.run('DROP INDEX room_players_open')
    await context.db.run('ALTER TABLE room_players DROP COLUMN room_closed')
    await context.db.run('DELETE FROM schema_migrations WHERE version = 14')
    expect(await migrate(context.db)).toEqual([14])
    const seats = await context.db.all<{ room_id: string; room_closed: boolean | number }>('SELECT room_id, room_closed FROM room_players WHERE user_id = $1', [owner.userId])
    expect(Object.fromEntries(seats.map((seat) => [seat.room_id, Boolean(seat.room_closed)]))).toEqual({ [open.room_id]: false, [closed.room_id]: true })
  })
})

describe.if(onlyOn('postgres', 'deadlocks between transactions (SQLite runs one writer at a time)'))('store on postgres: transactions in a circle', () => {
  test('two transactions appending to the same two streams in opposite orders both complete: the one aborted for the deadlock runs again', async () => {
    const { context } = await createTestApp()
    const { db, events } = context
    let arrived = 0
    const bothHoldOne = async () => {
      arrived++
      while (arrived < 2) await Bun.sleep(5)
    }
    const event = (user_id: string) => ({ type: 'account_changed' as const, user_id, fields: ['username'] })
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()]
    const write = (first: string, second: string) =>
      db.transaction(async (tx) => {
        await events.emit(tx, [`user:${first}`, event(first)])
        await bothHoldOne()
        await events.emit(tx, [`user:${second}`, event(second)])
      })
    await Promise.all([write(a, b), write(b, a)])
    for (const stream of [`user:${a}`, `user:${b}`]) expect((await events.read(stream, 0)).map((stored) => stored.seq)).toEqual([1, 2])
  }, 20_000)
})

describe(`store on ${STORE}: many transactions at once`, () => {
  test('fifty concurrent transactions and plain statements on one store all complete, none inside another', async () => {
    const db = await openDatabase(await freshDatabaseUrl(), 4)
    await migrate(db)
    const writes = Array.from({ length: 50 }, (_, i) =>
      i % 3 === 0
        ? db.run("INSERT INTO settings (key, value) VALUES ($1, 'plain')", [`plain_${i}`])
        : db.transaction(async (tx) => {
            await tx.run("INSERT INTO settings (key, value) VALUES ($1, 'tx')", [`tx_${i}`])
            await Bun.sleep(0)
            await tx.run("UPDATE settings SET value = 'tx-done' WHERE key = $1", [`tx_${i}`])
          }),
    )
    await Promise.all(writes)
    const rows = await db.all<{ key: string; value: string }>("SELECT key, value FROM settings WHERE key LIKE 'plain_%' OR key LIKE 'tx_%'")
    expect(rows).toHaveLength(50)
    expect(rows.filter((row) => row.key.startsWith('tx_')).every((row) => row.value === 'tx-done')).toBe(true)
    await db.close()
  })
})
