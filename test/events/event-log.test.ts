import { afterAll, describe, expect, test } from 'bun:test'
import type { Database } from '../../src/db/database'
import { payloads } from '../../src/modules/events/bus'
import { type LobbyEvent, roomStream, userStream } from '../../src/modules/events/model'
import { LogReader } from '../../src/modules/events/reader'
import { EventStore } from '../../src/modules/events/store'
import { closeTestResources, createTestApp, onlyOn, STORE, startTestServer } from '../support/harness'
import { lobby, roomWorld } from '../support/lobby'

// The event log under the realtime layer: every lobby change writes its events in its own
// transaction, on the streams of the people concerned, numbered without gaps in commit order.

afterAll(closeTestResources)

const { t, rooms, admin, owner, guest, other, stranger } = await roomWorld()

const types = async (stream: string, after = 0) => (await t.context.events.read(stream, after)).map(({ event }) => event.type)
const head = async (stream: string) => (await t.context.events.read(stream, 0)).at(-1)?.seq ?? 0

describe(`the event log on ${STORE}`, () => {
  test("a room's life reaches its members' stream, and each person's own stream gets what concerns them", async () => {
    const room = await rooms.createRoom(owner, { max_players: 2 })
    const invitation = await rooms.invite(owner, room.room_id, guest)
    expect(await types(userStream(guest.userId))).toContain('invitation_received')
    await t.client.post(`/rooms/${room.room_id}/join`, { ct: invitation.ct }, guest.access)
    expect(await types(roomStream(room.room_id))).toEqual(['room_created', 'member_joined', 'room_ready'])
    expect((await t.context.events.read(userStream(owner.userId), 0)).at(-1)?.event).toEqual({
      type: 'invitation_accepted',
      invite_id: invitation.invite_id,
      room_id: room.room_id,
      receiver_id: guest.userId,
    })
    const mark = await head(roomStream(room.room_id))
    await t.client.delete(`/rooms/${room.room_id}/members/${guest.userId}`, owner.access)
    expect(await types(roomStream(room.room_id), mark)).toEqual(['member_kicked', 'room_not_ready'])
    expect((await types(userStream(guest.userId))).at(-1)).toBe('removed_from_room')
    await rooms.seat(owner, room.room_id, other)
    const beforeLeave = await head(roomStream(room.room_id))
    await t.client.delete(`/rooms/${room.room_id}/members/me`, owner.access)
    const left = await t.context.events.read(roomStream(room.room_id), beforeLeave)
    expect(left.map(({ event }) => event)).toEqual([
      { type: 'member_left', room_id: room.room_id, user_id: owner.userId },
      { type: 'owner_changed', room_id: room.room_id, owner_id: other.userId },
      { type: 'room_not_ready', room_id: room.room_id },
    ])
    const pending = await rooms.invite(other, room.room_id, stranger)
    const beforeClose = await head(userStream(stranger.userId))
    await t.client.post(`/rooms/${room.room_id}/close`, undefined, other.access)
    expect((await types(roomStream(room.room_id))).at(-1)).toBe('room_closed')
    expect((await t.context.events.read(userStream(stranger.userId), beforeClose)).map(({ event }) => event)).toEqual([
      { type: 'invitation_revoked', invite_id: pending.invite_id, room_id: room.room_id },
    ])
  })

  test("declines and revocations tell the other side; a stranger's stream hears nothing of rooms it is not in", async () => {
    const room = await rooms.createRoom(owner)
    const declined = await rooms.invite(owner, room.room_id, guest)
    const strangerBefore = await head(userStream(stranger.userId))
    await t.client.post(`/invites/${declined.invite_id}/decline`, undefined, guest.access)
    expect((await t.context.events.read(userStream(owner.userId), 0)).at(-1)?.event).toMatchObject({
      type: 'invitation_declined',
      invite_id: declined.invite_id,
    })
    const revoked = await rooms.invite(owner, room.room_id, other)
    await t.client.delete(`/invites/${revoked.invite_id}`, owner.access)
    expect((await t.context.events.read(userStream(other.userId), 0)).at(-1)?.event).toMatchObject({ type: 'invitation_revoked', invite_id: revoked.invite_id })
    expect(await head(userStream(stranger.userId))).toBe(strangerBefore)
  })

  test("sessions ended and accounts changed reach the user's stream: logout, password change, deactivation, deletion, rename", async () => {
    const user = await t.client.register('evented_user')
    const second = await t.client.login('evented_user', 'password-123')
    const stream = userStream(user.userId)
    await t.client.post('/auth/logout', undefined, second.access)
    const third = await t.client.login('evented_user', 'password-123')
    await t.client.post('/auth/change-password', { current_password: 'password-123', new_password: 'password-456' }, third.access)
    await t.client.put(`/users/${user.userId}`, { username: 'evented_renamed' }, admin.access)
    await t.client.post(`/users/${user.userId}/deactivate`, undefined, admin.access)
    const events = (await t.context.events.read(stream, 0)).map(({ event }) => event)
    expect(events).toEqual([
      { type: 'session_revoked', session_id: expect.any(String), reason: 'logout' },
      { type: 'account_changed', user_id: user.userId, fields: ['password'] },
      { type: 'session_revoked', session_id: expect.any(String), reason: 'password_changed' },
      { type: 'account_changed', user_id: user.userId, fields: ['username'] },
      { type: 'session_revoked', session_id: expect.any(String), reason: 'account_deactivated' },
      { type: 'account_changed', user_id: user.userId, fields: ['is_active'] },
    ])
    await t.client.post(`/users/${user.userId}/activate`, undefined, admin.access)
    await t.client.login('evented_renamed', 'password-456')
    const beforeDelete = await head(stream)
    await t.client.delete(`/users/${user.userId}`, admin.access)
    expect(await types(stream, beforeDelete)).toEqual(['session_revoked', 'account_deleted'])
  })

  test('a refused change writes no event: the event exists exactly when its change does', async () => {
    const room = await rooms.createRoom(owner, { max_players: 1 })
    const invitation = await rooms.invite(admin, room.room_id, guest)
    const before = { room: await head(roomStream(room.room_id)), owner: await head(userStream(owner.userId)) }
    expect((await t.client.post(`/rooms/${room.room_id}/join`, { ct: invitation.ct }, guest.access)).status).toBe(409)
    expect((await t.client.post(`/rooms/${room.room_id}/invite`, { user_name: 'nobody_at_all', player_role: 'x' }, owner.access)).status).toBe(409)
    expect({ room: await head(roomStream(room.room_id)), owner: await head(userStream(owner.userId)) }).toEqual(before)
  })
})

describe(`stream numbers under concurrency on ${STORE}`, () => {
  test("twenty owners inviting one player at once: the player's stream is numbered 1..20, each once", async () => {
    const server = await startTestServer()
    const l = lobby(server.client)
    const target = await server.client.register('popular_player')
    const owners = await Promise.all(Array.from({ length: 20 }, (_, i) => server.client.register(`busy_owner_${i}`)))
    const ownedRooms = await Promise.all(owners.map((owner) => l.createRoom(owner)))
    const replies = await Promise.all(
      owners.map((owner, i) => server.client.post(`/rooms/${ownedRooms[i]!.room_id}/invite`, { user_name: 'popular_player', player_role: 'x' }, owner.access)),
    )
    expect(replies.map((reply) => reply.status)).toEqual(Array(20).fill(201))
    const events = await server.context.events.read(userStream(target.userId), 0)
    expect(events.map(({ seq }) => seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(new Set(events.map(({ event }) => (event as { invite_id: string }).invite_id)).size).toBe(20)
  })

  test('events older than EVENT_RETENTION are purged; the numbers go on after them', async () => {
    const kept = await createTestApp({ EVENT_RETENTION: '3600' })
    const user = await kept.client.register('old_news')
    const second = await kept.client.login('old_news', 'password-123')
    await kept.client.post('/auth/logout', undefined, second.access)
    await kept.context.db.run('UPDATE events SET created_at = $1', [new Date(Date.now() - 7_200_000).toISOString()])
    const written = Number((await kept.context.db.get<{ count: number }>('SELECT COUNT(*) AS count FROM events'))!.count)
    expect(await kept.context.events.purge()).toBe(written)
    const third = await kept.client.login('old_news', 'password-123')
    await kept.client.post('/auth/logout', undefined, third.access)
    expect((await kept.context.events.read(userStream(user.userId), 0)).map(({ seq }) => seq)).toEqual([2])
  })
})

describe(`a transaction with many events on ${STORE}`, () => {
  test('three hundred events in one commit (a room closed with that many invitees) go out, the NOTIFY split under 8,000 bytes', async () => {
    const fresh = await createTestApp()
    const streams = Array.from({ length: 300 }, () => userStream(crypto.randomUUID()))
    await fresh.context.db.transaction((tx) =>
      fresh.context.events.emit(
        tx,
        ...streams.map((stream): [string, LobbyEvent] => [
          stream,
          { type: 'invitation_revoked', invite_id: crypto.randomUUID(), room_id: crypto.randomUUID() },
        ]),
      ),
    )
    for (const stream of streams.slice(0, 3)) expect((await fresh.context.events.read(stream, 0)).map(({ seq }) => seq)).toEqual([1])
    const stored = streams.map((stream) => ({ stream, seq: 1, event: { type: 'room_closed' as const, room_id: 'x'.repeat(9000) }, created_at: '' }))
    const sent = payloads(stored)
    expect(sent.every((payload) => Buffer.byteLength(payload) < 8000)).toBe(true)
    expect(sent.flatMap((payload) => JSON.parse(payload)).map((notice: { stream: string }) => notice.stream)).toEqual(streams)
  })

  test('reads asked for at once are read together, each exactly as asked (a resume storm), and a read asked for later is read afresh', async () => {
    const { db, events } = t.context
    const streams = Array.from({ length: 250 }, () => userStream(crypto.randomUUID()))
    await db.transaction(async (tx) => {
      for (const [index, stream] of streams.entries())
        for (let n = 0; n < index % 5; n++) await events.emit(tx, [stream, { type: 'account_changed', user_id: stream.slice(5), fields: [`field_${n}`] }])
    })
    const statements = countStatements(db)
    // Each its own bounds: from the start, after the first, up to the third, at most two.
    const asked = streams.map((stream, index) => ({ stream, after: index % 3 === 1 ? 1 : 0, limit: index % 4 === 3 ? 2 : 16, upTo: index % 7 === 2 ? 3 : undefined }))
    const answers = await Promise.all(asked.map(({ stream, after, limit, upTo }) => events.read(stream, after, limit, upTo)))
    const lasts = await Promise.all(streams.map((stream) => events.lastSeq(stream)))
    // 500 reads, in batches of at most 100 log reads and 200 last numbers (a renewal of presence may add a few).
    expect(statements.stop()).toBeLessThan(20)
    for (const [index, { after, limit, upTo }] of asked.entries()) {
      const written = index % 5
      const expected = Array.from({ length: Math.max(0, Math.min(written, upTo ?? written) - after) }, (_, n) => after + n + 1).slice(0, limit)
      expect(answers[index]!.map((stored) => stored.seq)).toEqual(expected)
      expect(answers[index]!.map((stored) => (stored.event as { fields: string[] }).fields[0])).toEqual(expected.map((seq) => `field_${seq - 1}`))
      expect(lasts[index]).toBe(written)
    }
    // Asked once a read of the same stream is under way, and after a commit: read afresh, never answered by the earlier read.
    const stream = streams[0]!
    const early = events.lastSeq(stream)
    await new Promise((resolve) => setImmediate(resolve))
    await db.transaction((tx) => events.emit(tx, [stream, { type: 'account_changed', user_id: stream.slice(5), fields: ['late'] }]))
    expect(await events.lastSeq(stream)).toBe(1)
    expect(await early).toBeLessThanOrEqual(1)
  })
})

describe(`positions in the whole log on ${STORE}`, () => {
  const event = (user_id: string): LobbyEvent => ({ type: 'account_changed', user_id, fields: ['username'] })
  const last = async () => Number((await t.context.db.get<{ position: number }>('SELECT MAX(position) AS position FROM events'))?.position ?? 0)

  test('every event has one, unique across streams, increasing with each stream\'s numbers, in the order commits were made one after another', async () => {
    const from = await last()
    const streams = [userStream(crypto.randomUUID()), userStream(crypto.randomUUID())]
    for (let i = 0; i < 6; i++) await t.context.db.transaction((tx) => t.context.events.emit(tx, [streams[i % 2]!, event('x')], [streams[(i + 1) % 2]!, event('y')]))
    const reader = new LogReader({ db: t.context.db, eventStore: new EventStore(t.context.db.dialect) })
    const { events, passed } = await reader.next(from, 100)
    expect(events.map((stored) => stored.position)).toEqual(Array.from({ length: 12 }, (_, index) => from + index + 1))
    expect(passed).toBe(from + 12)
    for (const stream of streams) expect(events.filter((stored) => stored.stream === stream).map((stored) => stored.seq)).toEqual([1, 2, 3, 4, 5, 6])
  })

  test.if(onlyOn('postgres', 'the whole log read while transactions still hold positions (SQLite runs one writer at a time)'))('a reader of the whole log never passes a position a transaction still running may fill, nor waits for one rolled back', async () => {
    const { db, events } = t.context
    const reader = new LogReader({ db, eventStore: new EventStore(db.dialect) })
    const from = await last()
    // The first transaction takes its position, then waits before committing; the second takes the next one and commits.
    let commitFirst: () => void = () => {}
    const held = new Promise<void>((resolve) => (commitFirst = resolve))
    // Hooks before the commit run in order: when this one runs, the emit's own has taken the position.
    let positioned: () => void = () => {}
    const waiting = new Promise<void>((resolve) => (positioned = resolve))
    const first = db.transaction(async (tx) => {
      await events.emit(tx, [userStream(crypto.randomUUID()), event('first')])
      tx.beforeCommit(() => {
        positioned()
        return held
      })
    })
    await waiting
    await db.transaction((tx) => events.emit(tx, [userStream(crypto.randomUUID()), event('second')]))
    expect(await reader.next(from, 100)).toEqual({ events: [], passed: from, waiting: true })
    commitFirst()
    await first
    const both = await reader.next(from, 100)
    expect(both.events.map((stored) => [stored.position, (stored.event as { user_id: string }).user_id])).toEqual([
      [from + 1, 'first'],
      [from + 2, 'second'],
    ])
    // A transaction rolled back after taking its position leaves a gap for good: passed once it is over.
    await db
      .transaction(async (tx) => {
        await events.emit(tx, [userStream(crypto.randomUUID()), event('rolled back')])
        tx.beforeCommit(async () => {
          throw new Error('changed its mind')
        })
      })
      .catch(() => {})
    await db.transaction((tx) => events.emit(tx, [userStream(crypto.randomUUID()), event('after')]))
    let after = await reader.next(from + 2, 100)
    if (after.events.length === 0) after = await reader.next(from + 2, 100)
    expect(after.events.map((stored) => [stored.position, (stored.event as { user_id: string }).user_id])).toEqual([[from + 4, 'after']])
    expect(after.passed).toBe(from + 4)
  })
})

/** Counts the statements run on `db` outside transactions, until stop(). */
function countStatements(db: Database) {
  let count = 0
  const methods = ['all', 'get', 'run'] as const
  const originals = methods.map((name) => db[name])
  methods.forEach((name, index) => {
    Object.assign(db, { [name]: (...args: unknown[]) => (count++, (originals[index] as (...args: unknown[]) => unknown).apply(db, args)) })
  })
  return {
    stop: () => {
      methods.forEach((name) => delete (db as unknown as Record<string, unknown>)[name])
      return count
    },
  }
}
