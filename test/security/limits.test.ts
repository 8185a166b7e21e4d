import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { MAX_OFFSET } from '../../src/shared/model'
import { closeTestResources, createTestApp, expectEnvelope, type Session, STORE, startTestServer, type TestApp } from '../support/harness'
import { lobby } from '../support/lobby'

afterAll(closeTestResources)

const LIST_ROUTES = ['GET /users', 'GET /rooms', 'GET /rooms/my', 'POST /rooms/my', 'GET /invites/my', 'GET /invites/sent', 'GET /dms', 'GET /blocks']
/** At and past 2^53 and 2^63, negative, fractional, exponent and overflowing spellings. */
const HUGE_NUMBERS = ['9007199254740992', '9007199254740993', '9223372036854775807', '9223372036854775808', '1e19', '1e400', '-1', '0.5', '18446744073709551616']

describe(`every number has a maximum on ${STORE} (SECURITY 24)`, () => {
  let t: TestApp
  let admin: Session
  beforeAll(async () => {
    t = await createTestApp()
    admin = await t.client.loginAdmin()
  })

  test('offset and limit at and past 2^53 and 2^63 are 422 on every list route, never 500', async () => {
    for (const route of LIST_ROUTES) {
      const [method, path] = route.split(' ') as [string, string]
      for (const parameter of ['offset', 'limit'])
        for (const value of HUGE_NUMBERS) {
          const reply = await t.client.call(method, `${path}?${parameter}=${value}`, { token: admin.access })
          expect({ route, parameter, value, status: reply.status }).toEqual({ route, parameter, value, status: 422 })
          expect(expectEnvelope(reply)).toBe('validation_error')
        }
      const deepest = await t.client.call(method, `${path}?offset=${MAX_OFFSET}`, { token: admin.access })
      expect({ route, status: deepest.status }).toEqual({ route, status: 200 })
      expect((await t.client.call(method, `${path}?offset=${MAX_OFFSET + 1}`, { token: admin.access })).status).toBe(422)
    }
  })

  test('POST /rooms/my pages like GET /rooms/my instead of answering every room at once', async () => {
    const player = await t.client.register('many_rooms')
    for (let i = 0; i < 3; i++) await lobby(t.client).createRoom(player, { room_name: `mine ${i}` })
    const page = await t.client.post('/rooms/my?limit=2', undefined, player.access)
    expect(page.status).toBe(200)
    expect(page.body.rooms).toHaveLength(2)
    expect(page.body.total_count).toBe(3)
    expect((await t.client.post('/rooms/my', undefined, player.access)).body.rooms).toHaveLength(3)
    expect((await t.client.post('/rooms/my?limit=201', undefined, player.access)).status).toBe(422)
  })
})

describe(`quotas and per-user rate limits under bursts on ${STORE} (SECURITY 21, 24)`, () => {
  const burst = <Reply>(count: number, send: (index: number) => Promise<Reply>) => Promise.all(Array.from({ length: count }, (_, i) => send(i)))
  const statuses = (replies: Array<{ status: number }>) => replies.map((reply) => reply.status)
  const countOf = (all: number[], status: number) => all.filter((value) => value === status).length

  test('forty concurrent room creations by one user stop at ROOM_QUOTA open rooms; closing one frees a place', async () => {
    const server = await startTestServer({ ROOM_QUOTA: '3' })
    const owner = await server.client.register('quota_owner')
    const replies = await burst(40, (i) => server.client.post('/rooms', { room_name: `burst ${i}` }, owner.access))
    const all = statuses(replies)
    expect(countOf(all, 201)).toBe(3)
    expect(countOf(all, 409)).toBe(37)
    expect(replies.find((reply) => reply.status === 409)?.body).toMatchObject({ reason: 'quota_reached', message: expect.stringContaining('3 open rooms') })
    const created = replies.find((reply) => reply.status === 201)!.body
    expect((await server.client.post(`/rooms/${created.room_id}/close`, undefined, owner.access)).status).toBe(200)
    expect((await server.client.post('/rooms', { room_name: 'after closing one' }, owner.access)).status).toBe(201)
    expect((await server.client.post('/rooms', { room_name: 'one too many' }, owner.access)).status).toBe(409)
    // The quota is per owner: someone else creates freely.
    const other = await server.client.register('quota_other')
    expect((await server.client.post('/rooms', { room_name: 'theirs' }, other.access)).status).toBe(201)
  })

  test('forty concurrent room creations stop at ROOM_RATE_LIMIT per window, with Retry-After', async () => {
    const server = await startTestServer({ ROOM_RATE_LIMIT: '5', USER_RATE_WINDOW: '600' })
    const owner = await server.client.register('rate_owner')
    const replies = await burst(40, (i) => server.client.post('/rooms', { room_name: `burst ${i}` }, owner.access))
    const all = statuses(replies)
    expect(countOf(all, 201)).toBe(5)
    expect(countOf(all, 429)).toBe(35)
    const limited = replies.find((reply) => reply.status === 429)!
    expect(expectEnvelope(limited)).toBe('rate_limited')
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(590)
    const rows = await server.context.db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM rooms WHERE owner_id = $1', [owner.userId])
    expect(rows?.total).toBe(5)
  })

  test('invitations: forty concurrent tries (the username oracle) get INVITE_RATE_LIMIT answers, the rest 429', async () => {
    const server = await startTestServer({ INVITE_RATE_LIMIT: '5', USER_RATE_WINDOW: '600' })
    const owner = await server.client.register('oracle_owner')
    const room = await lobby(server.client).createRoom(owner)
    const replies = await burst(40, (i) => server.client.post(`/rooms/${room.room_id}/invite`, { user_name: `probe_${i}`, player_role: 'spy' }, owner.access))
    const all = statuses(replies)
    expect(countOf(all, 409)).toBe(5)
    expect(countOf(all, 429)).toBe(35)
    // The limit is the inviter's: another owner still invites.
    const other = await server.client.register('other_owner')
    const guest = await server.client.register('oracle_guest')
    const otherRoom = await lobby(server.client).createRoom(other)
    expect((await server.client.post(`/rooms/${otherRoom.room_id}/invite`, { user_name: guest.username, player_role: 'operator' }, other.access)).status).toBe(201)
  })

  test('blocks: forty at once stop at BLOCK_QUOTA, then at BLOCK_RATE_LIMIT; a block or unblock that changes nothing is not counted', async () => {
    const server = await startTestServer({ BLOCK_QUOTA: '3', BLOCK_RATE_LIMIT: '6', USER_RATE_WINDOW: '600' })
    const blocker = await server.client.register('block_burst')
    const targets = await Promise.all(Array.from({ length: 40 }, (_, i) => server.client.register(`block_target_${i}`)))
    const block = (target: { userId: string }) => server.client.call('PUT', `/blocks/${target.userId}`, { token: blocker.access })
    const all = statuses(await burst(40, (i) => block(targets[i]!)))
    expect(countOf(all, 200)).toBe(3)
    expect(countOf(all, 409) + countOf(all, 429)).toBe(37)
    const listed = (await server.client.get('/blocks?limit=2', blocker.access)).body
    expect(listed.blocked).toHaveLength(2)
    expect(listed.total_count).toBe(3)
    const blockedIds = (await server.client.get('/blocks?limit=10', blocker.access)).body.blocked.map((row: { user_id: string }) => row.user_id)
    const blocked = targets.filter((target) => blockedIds.includes(target.userId))
    // Which three the burst blocked is a race: the one unblocked below is one it did not.
    const notBlocked = targets.find((target) => !blockedIds.includes(target.userId))!
    // Already blocked, or not blocked: nothing changes, nothing is counted.
    const hits = async () => Number((await server.context.db.get<{ hits: number }>("SELECT hits FROM rate_limits WHERE bucket LIKE 'blocks:%'"))?.hits)
    const counted = await hits()
    for (let i = 0; i < 20; i++) expect((await block(blocked[0]!)).status).toBe(200)
    for (let i = 0; i < 20; i++) expect((await server.client.delete(`/blocks/${notBlocked.userId}`, blocker.access)).status).toBe(200)
    expect(await hits()).toBe(counted)
    // Past BLOCK_RATE_LIMIT, a change is refused with 429 (the burst above spent the window).
    expect((await server.client.delete(`/blocks/${blocked[0]!.userId}`, blocker.access)).status).toBe(429)
  })

  test('self-renames: forty at once stop at ACCOUNT_RATE_LIMIT; sending the name one has already changes nothing and is not counted (SECURITY 29)', async () => {
    const server = await startTestServer({ ACCOUNT_RATE_LIMIT: '3', USER_RATE_WINDOW: '600' })
    const user = await server.client.register('renamer')
    const events = async () => Number((await server.context.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE stream = $1', [`user:${user.userId}`]))!.n)
    for (let i = 0; i < 20; i++) expect((await server.client.put('/users/me', { username: 'renamer' }, user.access)).status).toBe(200)
    expect(await events()).toBe(0)
    const all = statuses(await burst(40, (i) => server.client.put('/users/me', { username: `renamer_${i}` }, user.access)))
    expect(countOf(all, 200)).toBe(3)
    expect(countOf(all, 429)).toBe(37)
    expect(await events()).toBe(3)
    // Still the same name: answered, not counted, though the window is spent.
    const name = (await server.client.get('/users/me', user.access)).body.username
    expect((await server.client.put('/users/me', { username: name }, user.access)).status).toBe(200)
  })

  test('seats: forty invitations accepted at once stop at ROOM_SEAT_QUOTA open rooms, creating one counts too; leaving frees a seat', async () => {
    const server = await startTestServer({ ROOM_SEAT_QUOTA: '3' })
    const rooms = lobby(server.client)
    const owner = await server.client.register('seat_owner')
    const player = await server.client.register('seat_player')
    const created = await Promise.all(Array.from({ length: 40 }, (_, i) => rooms.createRoom(owner, { room_name: `seat ${i}` }).catch(() => undefined)))
    // The owner sits in each room they create: three, then 409.
    expect(created.filter(Boolean)).toHaveLength(3)
    // Forty open rooms of fourteen other owners, three each (their own seat quota).
    const others = await Promise.all(Array.from({ length: 14 }, (_, i) => server.client.register(`seat_other_${i}`)))
    const open = (await Promise.all(others.flatMap((other) => [0, 1, 2].map(() => rooms.createRoom(other))))).slice(0, 40)
    const invitations = await Promise.all(open.map((room, i) => rooms.invite(others[Math.floor(i / 3)]!, room.room_id, player)))
    const joins = await burst(40, (i) => server.client.post(`/rooms/${open[i]!.room_id}/join`, { ct: invitations[i]!.ct }, player.access))
    const all = statuses(joins)
    expect(countOf(all, 200)).toBe(3)
    expect(countOf(all, 409)).toBe(37)
    expect(joins.find((reply) => reply.status === 409)!.body).toMatchObject({ reason: 'quota_reached', message: expect.stringContaining('3 open rooms') })
    const seated = open.filter((_, i) => joins[i]!.status === 200)
    expect((await server.client.delete(`/rooms/${seated[0]!.room_id}/members/me`, player.access)).status).toBe(200)
    const next = open.findIndex((_, i) => joins[i]!.status === 409)
    expect((await server.client.post(`/rooms/${open[next]!.room_id}/join`, { ct: invitations[next]!.ct }, player.access)).status).toBe(200)
  }, 30_000)

  test('pending invitations: forty at once into one room stop at INVITE_PENDING_LIMIT; one that expired no longer counts', async () => {
    const server = await startTestServer({ INVITE_PENDING_LIMIT: '3' })
    const owner = await server.client.register('pending_owner')
    const room = await lobby(server.client).createRoom(owner, { max_players: 64 })
    const guests = await Promise.all(Array.from({ length: 41 }, (_, i) => server.client.register(`pending_guest_${i}`)))
    const invites = await burst(40, (i) => server.client.post(`/rooms/${room.room_id}/invite`, { user_name: guests[i]!.username, player_role: 'operator' }, owner.access))
    const all = statuses(invites)
    expect(countOf(all, 201)).toBe(3)
    expect(countOf(all, 409)).toBe(37)
    await server.context.db.run("UPDATE invitations SET expires_at = '2020-01-01T00:00:00.000Z' WHERE invite_id = $1", [invites.find((reply) => reply.status === 201)!.body.invite_id])
    expect((await server.client.post(`/rooms/${room.room_id}/invite`, { user_name: guests[40]!.username, player_role: 'operator' }, owner.access)).status).toBe(201)
  }, 30_000)

  test('a flood of refused tries costs no write each: the refused are answered from memory until the window ends', async () => {
    const t = await createTestApp({ ROOM_RATE_LIMIT: '2', USER_RATE_WINDOW: '600' })
    const owner = await t.client.register('flooding_owner')
    for (let i = 0; i < 2; i++) expect((await t.client.post('/rooms', { room_name: `kept ${i}` }, owner.access)).status).toBe(201)
    expect((await t.client.post('/rooms', { room_name: 'first refused' }, owner.access)).status).toBe(429)
    const hits = async () => (await t.context.db.get<{ hits: number }>("SELECT hits FROM rate_limits WHERE bucket LIKE 'rooms:%'"))?.hits
    const counted = await hits()
    const refused = await Promise.all(Array.from({ length: 50 }, (_, i) => t.client.post('/rooms', { room_name: `flood ${i}` }, owner.access)))
    expect(refused.every((reply) => reply.status === 429 && Number(reply.headers.get('retry-after')) > 590)).toBe(true)
    expect(await hits()).toBe(counted)
  })

  test('the window ends: after USER_RATE_WINDOW the user may act again', async () => {
    const t = await createTestApp({ ROOM_RATE_LIMIT: '1', USER_RATE_WINDOW: '1' })
    const owner = await t.client.register('window_owner')
    expect((await t.client.post('/rooms', { room_name: 'first' }, owner.access)).status).toBe(201)
    expect((await t.client.post('/rooms', { room_name: 'second' }, owner.access)).status).toBe(429)
    await Bun.sleep(1100)
    expect((await t.client.post('/rooms', { room_name: 'third' }, owner.access)).status).toBe(201)
  })
})
