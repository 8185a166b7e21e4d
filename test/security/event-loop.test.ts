import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { SQL } from 'bun'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { healthLatencies, quantile } from '../support/attack'
import { closeTestResources, freshDatabaseUrl, STORE, TEST_DATABASE_URL, TEST_ENV } from '../support/harness'
import { type ServiceProcess, startService } from '../support/process'

// SECURITY 28: whatever one account makes long (its streams, its messages), the work over it runs in
// batches that let other requests in. The service runs as its own process, as users run it, and
// /health is asked every 10 ms meanwhile. On SQLite every statement runs on the event loop.

const directory = mkdtempSync(join(tmpdir(), 'sgw-event-loop-'))
const databaseUrl = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(directory, 'loop.sqlite')}`
/** The service's store, opened beside it to write long histories quickly (SQLite in WAL mode allows it). */
const store = new SQL(TEST_DATABASE_URL ? databaseUrl : `sqlite://${join(directory, 'loop.sqlite')}`, { max: 1 })
/** A statement with `$1` placeholders, which SQLite takes only as `?1`. */
const sql = (text: string, params: unknown[]) => store.unsafe(TEST_DATABASE_URL ? text : text.replace(/\$(\d+)/g, '?$1'), params)

let service: ServiceProcess
beforeAll(async () => {
  service = await startService({ ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: databaseUrl })
}, 30_000)
afterAll(async () => {
  service?.child.kill('SIGKILL')
  await service?.child.exited
  await store.close()
  rmSync(directory, { recursive: true, force: true })
  await closeTestResources()
})

/** Appends `count` events to `stream` in one statement, as if its owner had made them one by one. */
async function lengthen(stream: string, count: number, event: (seq: string) => string): Promise<number> {
  const head = await sql('SELECT last_seq FROM event_streams WHERE stream = $1', [stream])
  const from = Number(head[0]?.last_seq ?? 0)
  await sql(
    `WITH RECURSIVE n(i) AS (SELECT $2 + 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2 + $3)
     INSERT INTO events (stream, seq, type, payload, created_at) SELECT $1, i, 'x', ${event('i')}, $4 FROM n`,
    [stream, from, count, new Date().toISOString()],
  )
  await sql(
    `INSERT INTO event_streams (stream, last_seq) VALUES ($1, $2) ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq`,
    [stream, from + count],
  )
  return from + count
}

/** Runs test/support/replayer.ts: `sockets` sockets of one user replaying `stream` from its start `rounds` times each. */
async function replays(token: string, stream: string, sockets: number, rounds: number) {
  const child = Bun.spawn([process.execPath, 'test/support/replayer.ts', service.baseUrl, token, stream, String(sockets), String(rounds)], { stdout: 'pipe' })
  const output = await new Response(child.stdout).text()
  await child.exited
  return output.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { subscribed: any; events: number })
}

describe(`nothing one account does holds the event loop on ${STORE} (SECURITY 28)`, () => {
  test('two sockets of one user replaying a 100,000-event stream again and again: /health p99 stays under 50 ms, and each replay is whole', async () => {
    const user = await service.client.register('long_stream')
    const head = await lengthen(`user:${user.userId}`, 100_000, (i) => `'{"type":"account_changed","user_id":"${user.userId}","fields":["username"],"n":' || ${i} || '}'`)
    const attack = replays(user.access, 'user', 2, 3)
    const latencies = await healthLatencies(service.baseUrl, attack)
    const answers = await attack
    expect(answers).toHaveLength(6)
    for (const answer of answers) expect(answer).toMatchObject({ subscribed: { op: 'subscribed', last_seq: head, recovered: true }, events: head })
    expect(quantile(latencies, 0.99)).toBeLessThan(50)
  }, 60_000)

  test('deleting messages of a 200,000-event chat stream: /health p99 stays under 50 ms', async () => {
    const owner = await service.client.register('long_chat')
    const room = (await service.client.post('/rooms', { room_name: 'Long chat' }, owner.access)).body
    const stream = `chat:${room.room_id}`
    const filler = (i: string) =>
      `'{"type":"message_posted","room_id":"${room.room_id}","message_id":"' || ${i} || '","author_id":"${owner.userId}","body":"filler","client_id":null,"created_at":"2026-12-05T00:00:00.000Z"}'`
    await lengthen(stream, 200_000, filler)
    const path = `/rooms/${room.room_id}/messages`
    const posted: string[] = []
    for (let i = 0; i < 15; i++) posted.push((await service.client.post(path, { body: `to go ${i}` }, owner.access)).body.message_id)
    const deletions = (async () => {
      for (const id of posted) expect((await service.client.delete(`${path}/${id}`, owner.access)).status).toBe(200)
    })()
    const latencies = await healthLatencies(service.baseUrl, deletions)
    await deletions
    expect(quantile(latencies, 0.99)).toBeLessThan(50)
  }, 60_000)

  test('deleting a user who wrote 200,000 room messages and 100,000 direct ones: /health p99 stays under 50 ms; their room messages stay, authorless', async () => {
    const writer = await service.client.register('prolific_writer')
    const peer = await service.client.register('prolific_peer')
    const room = (await service.client.post('/rooms', { room_name: 'Prolific' }, writer.access)).body
    const guest = await service.client.register('prolific_guest')
    const invitation = (await service.client.post(`/rooms/${room.room_id}/invite`, { user_name: guest.username, player_role: 'operator' }, writer.access)).body
    await service.client.post(`/rooms/${room.room_id}/join`, { ct: invitation.ct }, guest.access)
    await service.client.post(`/dms/${peer.userId}/messages`, { body: 'first' }, writer.access)
    const conversation = (await service.client.get('/dms', writer.access)).body.conversations[0].conversation_id
    const at = new Date().toISOString()
    await sql(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
       INSERT INTO messages (message_id, room_id, seq, author_id, body, created_at) SELECT 'm' || i, $1, 1000 + i, $2, 'words', $3 FROM n`,
      [room.room_id, writer.userId, at],
    )
    await sql(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
       INSERT INTO direct_messages (message_id, conversation_id, seq, author_id, body, created_at) SELECT 'd' || i, $1, 1 + i, $2, 'words', $3 FROM n`,
      [conversation, writer.userId, at],
    )
    const admin = await service.client.loginAdmin()
    const deletion = service.client.delete(`/users/${writer.userId}`, admin.access)
    const latencies = await healthLatencies(service.baseUrl, deletion)
    expect((await deletion).status).toBe(200)
    expect(quantile(latencies, 0.99)).toBeLessThan(50)
    const left = await sql('SELECT COUNT(*) AS n, COUNT(author_id) AS authored FROM messages WHERE room_id = $1', [room.room_id])
    expect([Number(left[0].n), Number(left[0].authored)]).toEqual([200_000, 0])
    expect(Number((await sql('SELECT COUNT(*) AS n FROM direct_messages WHERE conversation_id = $1', [conversation]))[0].n)).toBe(0)
    // The room lives on with the guest, who owns it now.
    expect((await service.client.get(`/rooms/${room.room_id}`, guest.access)).body).toMatchObject({ owner_id: guest.userId, is_closed: false })
  }, 60_000)
})

