import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../../src/config'
import { DEMO_PASSWORD, DEMO_USERS } from '../../src/seed'
import {
  closeTestResources,
  createTestApp,
  expectEnvelope,
  freshDatabaseUrl,
  refusal,
  type Session,
  STORE,
  startTestServer,
  TEST_DATABASE_URL,
  type TestApp,
} from '../support/harness'

afterAll(closeTestResources)

let t: TestApp
let admin: Session
beforeAll(async () => {
  t = await createTestApp()
  admin = await t.client.loginAdmin()
})

const missingId = '01936b2e-7c4a-7f3e-9b1d-2f5c8a9e4d10'

describe(`user administration on ${STORE}`, () => {
  test('POST /users creates a user with the given role and status (201); the new account can log in', async () => {
    const reply = await t.client.post('/users', { username: 'made_admin', password: 'password-123', user_role: 'admin', is_active: true }, admin.access)
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({ username: 'made_admin', user_role: 'admin', is_active: true })
    const defaults = await t.client.post('/users', { username: 'made_default', password: 'password-123' }, admin.access)
    expect(defaults.body).toMatchObject({ user_role: 'user', is_active: true })
    await t.client.login('made_admin', 'password-123')
  })

  test('POST /users: taken name 409, bad fields 422, non-admin 403, anonymous 401', async () => {
    const user = await t.client.register('plain_creator')
    expect(refusal(await t.client.post('/users', { username: 'MADE_DEFAULT', password: 'password-123' }, admin.access))).toEqual({ status: 409, error: 'conflict', reason: 'username_taken' })
    expect((await t.client.post('/users', { username: 'x', password: 'password-123' }, admin.access)).status).toBe(422)
    expect((await t.client.post('/users', { username: 'role_typo', password: 'password-123', user_role: 'god' }, admin.access)).status).toBe(422)
    expect(refusal(await t.client.post('/users', { username: 'by_user', password: 'password-123' }, user.access))).toEqual({ status: 403, error: 'forbidden', reason: 'admin_only' })
    expect((await t.client.post('/users', { username: 'by_nobody', password: 'password-123' })).status).toBe(401)
  })

  test('GET /users filters by status, role and search, pages with limit/offset, newest first', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    for (const name of ['Pilot_One', 'pilot_two', 'Engineer', 'pilotX']) await f.client.register(name)
    const [two] = (await f.client.get('/users?search=pilot_two', root.access)).body.users
    await f.client.post(`/users/${two.user_id}/deactivate`, undefined, root.access)

    const all = await f.client.get('/users', root.access)
    expect(all.status).toBe(200)
    expect(all.body.total_count).toBe(5)
    expect(all.body.users.map((user: { username: string }) => user.username)).toEqual(['pilotX', 'Engineer', 'pilot_two', 'Pilot_One', 'root_admin'])

    const search = await f.client.get('/users?search=PILOT', root.access)
    expect(search.body.total_count).toBe(3)
    // LIKE wildcards in the search are literal characters.
    const names = async (query: string) => (await f.client.get(`/users?${query}`, root.access)).body.users.map((user: { username: string }) => user.username)
    expect(await names('search=_')).toEqual(['pilot_two', 'Pilot_One', 'root_admin'])
    expect(await names('search=%25')).toEqual([])
    expect((await f.client.get('/users?is_active=false', root.access)).body.users.map((user: { username: string }) => user.username)).toEqual(['pilot_two'])
    expect((await f.client.get('/users?is_active=1&role=admin', root.access)).body.total_count).toBe(1)

    expect(await names('limit=2&offset=1')).toEqual(['Engineer', 'pilot_two'])
    const page = await f.client.get('/users?limit=2&offset=1', root.access)
    expect(page.body.total_count).toBe(5)
    expect((await f.client.get('/users?offset=99', root.access)).body).toMatchObject({ users: [], total_count: 5 })

    for (const query of ['limit=0', 'limit=201', 'offset=-1', 'is_active=maybe', 'role=god', 'unknown=1']) {
      const reply = await f.client.get(`/users?${query}`, root.access)
      expect({ query, status: reply.status }).toEqual({ query, status: 422 })
      expect(expectEnvelope(reply)).toBe('validation_error')
    }
  })

  test('GET /users total_count stays exact through creation, role and status changes, deletion, restoration and erasure', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    const created = []
    for (let i = 0; i < 8; i++) created.push(await f.client.register(`counted_${i}`))
    const [promoted, deactivated, both, deleted, renamed, restored, erased, deletedAdmin] = created as [Session, Session, Session, Session, Session, Session, Session, Session]
    await f.client.put(`/users/${promoted.userId}`, { user_role: 'admin' }, root.access)
    await f.client.post(`/users/${deactivated.userId}/deactivate`, undefined, root.access)
    await f.client.put(`/users/${both.userId}`, { user_role: 'admin', is_active: false }, root.access)
    await f.client.put(`/users/${both.userId}`, { user_role: 'user' }, root.access)
    await f.client.delete(`/users/${deleted.userId}`, root.access)
    await f.client.put(`/users/${renamed.userId}`, { username: 'counted_renamed' }, root.access)
    await f.client.post(`/users/${deactivated.userId}/activate`, undefined, root.access)
    await f.client.post(`/users/${deactivated.userId}/deactivate`, undefined, root.access)
    await f.client.delete(`/users/${restored.userId}`, root.access)
    expect((await f.client.post(`/users/${restored.userId}/restore`, undefined, root.access)).status).toBe(200)
    expect((await f.client.delete(`/users/${erased.userId}?permanent=true`, root.access)).status).toBe(200)
    await f.client.put(`/users/${deletedAdmin.userId}`, { user_role: 'admin' }, root.access)
    await f.client.delete(`/users/${deletedAdmin.userId}`, root.access)

    const rows = await f.context.db.all<{ user_role: string; is_active: boolean | number; deleted_at: string | null }>('SELECT user_role, is_active, deleted_at FROM users')
    for (const role of [undefined, 'user', 'admin'])
      for (const active of [undefined, true, false])
        for (const status of [undefined, 'active', 'inactive', 'deleted']) {
          const expected = rows.filter(
            (row) =>
              (role === undefined || row.user_role === role) &&
              (status === 'deleted' ? row.deleted_at !== null : row.deleted_at === null) &&
              (status === 'active' ? Boolean(row.is_active) : status === 'inactive' ? !row.is_active : active === undefined || Boolean(row.is_active) === active),
          ).length
          const query = [role && `role=${role}`, active !== undefined && `is_active=${active}`, status && `status=${status}`].filter(Boolean).join('&')
          // limit=1 makes every page full, so the total comes from the count, not from the page.
          const reply = await f.client.get(`/users?limit=1&${query}`, root.access)
          expect({ query, total: reply.body.total_count }).toEqual({ query, total: expected })
        }
    expect(rows.filter((row) => row.deleted_at !== null)).toHaveLength(2)
  })

  test('concurrent role changes in opposite directions all succeed and keep the counts exact', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    const users = await Promise.all(Array.from({ length: 12 }, (_, i) => f.client.register(`flip_${i}`)))
    await Promise.all(users.slice(0, 6).map((user) => f.client.put(`/users/${user.userId}`, { user_role: 'admin' }, root.access)))
    const replies = await Promise.all(users.map((user, i) => f.client.put(`/users/${user.userId}`, { user_role: i < 6 ? 'user' : 'admin' }, root.access)))
    expect(replies.map((reply) => reply.status)).toEqual(users.map(() => 200))
    const total = async (query: string) => (await f.client.get(`/users?limit=1&${query}`, root.access)).body.total_count
    expect([await total('role=admin'), await total('role=user'), await total('')]).toEqual([7, 6, 13])
  })

  test('GET /users total_count is the same on a full page, the last page and past the end', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    for (const name of ['page_a', 'page_b', 'page_c', 'page_d']) await f.client.register(name)
    for (const [query, length] of [
      ['limit=5', 5],
      ['limit=4&offset=1', 4],
      ['limit=3&offset=3', 2],
      ['limit=2&offset=4', 1],
      ['offset=5', 0],
      ['offset=50', 0],
    ] as const) {
      const reply = await f.client.get(`/users?${query}`, root.access)
      expect({ query, length: reply.body.users.length, total: reply.body.total_count }).toEqual({ query, length, total: 5 })
    }
    const searched = await f.client.get('/users?search=page_&limit=3&offset=2', root.access)
    expect({ length: searched.body.users.length, total: searched.body.total_count }).toEqual({ length: 2, total: 4 })
  })

  test('GET /users/{id}: 200, unknown 404, malformed id 400', async () => {
    const user = await t.client.register('looked_up')
    expect((await t.client.get(`/users/${user.userId}`, admin.access)).body).toMatchObject({ username: 'looked_up' })
    const missing = await t.client.get(`/users/${missingId}`, admin.access)
    expect(missing.status).toBe(404)
    expect(missing.body.error).toBe('not_found')
    const malformed = await t.client.get('/users/not-a-uuid', admin.access)
    expect(malformed.status).toBe(400)
    expect(malformed.body.error).toBe('bad_request')
  })

  test('PUT /users/{id} renames, changes role and status; checks user_id, conflicts and existence', async () => {
    const user = await t.client.register('to_change')
    const reply = await t.client.put(
      `/users/${user.userId}`,
      { user_id: user.userId, username: 'changed_name', user_role: 'admin', is_active: true },
      admin.access,
    )
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ user_id: user.userId, username: 'changed_name', user_role: 'admin' })
    expect(reply.body.updated_at > reply.body.created_at).toBe(true)
    expect((await t.client.get(`/users/${user.userId}`, admin.access)).body.username).toBe('changed_name')

    const mismatch = await t.client.put(`/users/${user.userId}`, { user_id: missingId }, admin.access)
    expect(mismatch.status).toBe(422)
    expect(mismatch.body.details).toEqual([{ field: '/user_id', message: "must equal the target user's id" }])
    expect((await t.client.put(`/users/${user.userId}`, { username: 'ROOT_ADMIN' }, admin.access)).status).toBe(409)
    expect((await t.client.put(`/users/${missingId}`, { username: 'ghost_name' }, admin.access)).status).toBe(404)
    expect((await t.client.put(`/users/${user.userId}`, { is_active: 'yes' }, admin.access)).status).toBe(422)
  })

  test('changing one field leaves the others alone (no implicit defaults)', async () => {
    const other = await t.client.post('/users', { username: 'other_admin', password: 'password-123', user_role: 'admin', is_active: false }, admin.access)
    const renamed = await t.client.put(`/users/${other.body.user_id}`, { username: 'renamed_admin' }, admin.access)
    expect(renamed.body).toMatchObject({ username: 'renamed_admin', user_role: 'admin', is_active: false })
    expect((await t.client.get(`/users/${other.body.user_id}`, admin.access)).body).toMatchObject({ user_role: 'admin', is_active: false })
  })

  test('PUT /users/me: anyone renames themself; role and status are for admins; user_id must match', async () => {
    const user = await t.client.register('self_editor')
    const renamed = await t.client.put('/users/me', { username: 'self_edited' }, user.access)
    expect(renamed.status).toBe(200)
    expect(renamed.body.username).toBe('self_edited')
    await t.client.login('self_edited', 'password-123')
    for (const body of [{ user_role: 'admin' }, { is_active: false }]) {
      expect(refusal(await t.client.put('/users/me', body, user.access))).toEqual({ status: 403, error: 'forbidden', reason: 'admin_only' })
    }
    expect((await t.client.get('/auth/me', user.access)).body.user_role).toBe('user')
    expect((await t.client.put('/users/me', { user_id: admin.userId, username: 'hijack' }, user.access)).status).toBe(422)
    expect((await t.client.put('/users/me', { username: 'root_admin' }, user.access)).status).toBe(409)
  })

  test('deactivate and activate return the user; unknown ids 404', async () => {
    const user = await t.client.register('toggled')
    const off = await t.client.post(`/users/${user.userId}/deactivate`, undefined, admin.access)
    expect(off.status).toBe(200)
    expect([off.body.is_active, off.body.status]).toEqual([false, 'inactive'])
    const on = await t.client.post(`/users/${user.userId}/activate`, undefined, admin.access)
    expect([on.body.is_active, on.body.status]).toEqual([true, 'active'])
    expect((await t.client.post(`/users/${missingId}/deactivate`, undefined, admin.access)).status).toBe(404)
    expect((await t.client.post(`/users/${missingId}/activate`, undefined, admin.access)).status).toBe(404)
  })
})

describe(`admins on ${STORE}`, () => {
  test('an admin cannot delete, deactivate or demote themself (409)', async () => {
    const me = admin.userId
    const attempts = [
      await t.client.delete(`/users/${me}`, admin.access),
      await t.client.post(`/users/${me}/deactivate`, undefined, admin.access),
      await t.client.put(`/users/${me}`, { user_role: 'user' }, admin.access),
      await t.client.put('/users/me', { user_role: 'user' }, admin.access),
      await t.client.put('/users/me', { is_active: false }, admin.access),
    ]
    for (const reply of attempts) expect(refusal(reply)).toEqual({ status: 409, error: 'conflict', reason: 'self_target' })
    expect((await t.client.get('/auth/me', admin.access)).body).toMatchObject({ user_role: 'admin', is_active: true })
  })

  test('two admins removing each other at the same moment: one succeeds, the last admin stays', async () => {
    const server = await startTestServer({ ADMIN_USERNAME: 'first_admin', ADMIN_PASSWORD: 'first-admin-password' })
    const first = await server.client.login('first_admin', 'first-admin-password')
    await server.client.post('/users', { username: 'second_admin', password: 'password-123', user_role: 'admin' }, first.access)
    const second = await server.client.login('second_admin', 'password-123')
    const replies = await Promise.all([
      server.client.delete(`/users/${second.userId}`, first.access),
      server.client.delete(`/users/${first.userId}`, second.access),
    ])
    const [won, lost] = replies.sort((a, b) => a.status - b.status)
    expect(won!.status).toBe(200)
    // The loser is refused either as already deleted (401) or as the last admin left (409).
    if (lost!.status === 409) expect(refusal(lost!).reason).toBe('last_admin')
    else expect(lost!.status).toBe(401)
    const admins = await server.context.db.get<{ total: number }>(
      "SELECT CAST(count(*) AS INTEGER) AS total FROM users WHERE user_role = 'admin' AND is_active = $1",
      [true],
    )
    expect(admins?.total).toBe(1)
  })

  test('ADMIN_USERNAME/ADMIN_PASSWORD create the admin once; a restart never resets its password', async () => {
    const first = await createTestApp()
    expect((await first.client.loginAdmin()).username).toBe('root_admin')
    await first.client.post(
      '/auth/change-password',
      { current_password: 'root-admin-password', new_password: 'rotated-admin-password' },
      (await first.client.loginAdmin()).access,
    )
    expect(await first.context.users.bootstrapAdmin('root_admin', 'root-admin-password')).toBe('done_before')
    await first.client.login('root_admin', 'rotated-admin-password')
  })

  const sharedStore = async () => (TEST_DATABASE_URL ? freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'sgw-admin-')), 'admin.sqlite')}`)

  test('start-up stops, naming ADMIN_USERNAME, when that name belongs to an account that is not an active admin', async () => {
    const url = await sharedStore()
    const first = await createTestApp({ DATABASE_URL: url, ADMIN_USERNAME: '', ADMIN_PASSWORD: '' })
    await first.client.register('squatter')
    for (const taken of ['squatter', 'SQUATTER']) {
      const boot = createTestApp({ DATABASE_URL: url, ADMIN_USERNAME: taken, ADMIN_PASSWORD: 'operator-password' })
      await expect(boot).rejects.toBeInstanceOf(ConfigError)
      await expect(boot).rejects.toThrow(/ADMIN_USERNAME: the account .* exists but is not an active admin/)
    }
  })

  test('once bootstrapped, an admin deleted or renamed on purpose stays so, and nobody can take the name to stop the service', async () => {
    const url = await sharedStore()
    const env = { DATABASE_URL: url, ADMIN_USERNAME: 'first_admin', ADMIN_PASSWORD: 'first-admin-password' }
    const first = await createTestApp(env)
    const original = await first.client.login('first_admin', 'first-admin-password')
    const successor = await first.client.post('/users', { username: 'second_admin', password: 'second-admin-password', user_role: 'admin' }, original.access)
    expect(successor.status).toBe(201)
    const second = await first.client.login('second_admin', 'second-admin-password')
    expect((await first.client.delete(`/users/${original.userId}?permanent=true`, second.access)).status).toBe(200)
    // Someone registers the freed name: the next start neither brings the old admin back nor stops.
    await first.client.register('FIRST_ADMIN')
    const restarted = await createTestApp(env)
    expect((await restarted.client.post('/auth/login', { username: 'first_admin', password: 'first-admin-password' })).status).toBe(401)
    expect((await restarted.client.get('/users/me', (await restarted.client.login('first_admin', 'password-123')).access)).body.user_role).toBe('user')
  })

  test('SEED_DEMO_DATA fills an empty database with the documented accounts, rooms in every state and invitations, and never touches one with users', async () => {
    const demo = await createTestApp({ SEED_DEMO_DATA: 'true' })
    for (const user of DEMO_USERS) {
      const reply = await demo.client.post('/auth/login', { username: user.username, password: DEMO_PASSWORD })
      expect({ user: user.username, status: reply.status }).toEqual({ user: user.username, status: 'is_active' in user ? 403 : 200 })
    }
    const alice = await demo.client.login('alice', DEMO_PASSWORD)
    const carol = await demo.client.login('carol', DEMO_PASSWORD)
    const admin = await demo.client.login('demo_admin', DEMO_PASSWORD)
    const states = (await demo.client.get('/rooms', admin.access)).body.rooms.map((room: { is_ready: boolean; is_closed: boolean }) =>
      room.is_closed ? 'closed' : room.is_ready ? 'ready' : 'open',
    )
    expect(states.sort()).toEqual(['closed', 'open', 'ready'])
    expect((await demo.client.get('/rooms/my', alice.access)).body.total_count).toBeGreaterThan(0)
    const morning = (await demo.client.get('/rooms/my', alice.access)).body.rooms.find((room: { room_name: string }) => room.room_name.startsWith('Morning'))
    expect((await demo.client.get(`/rooms/${morning.room_id}/messages`, alice.access)).body.messages.length).toBeGreaterThanOrEqual(3)
    expect((await demo.client.get('/invites/sent', alice.access)).body.total_count).toBeGreaterThan(0)
    const received = (await demo.client.get('/invites/my', carol.access)).body.invitations
    expect(received.map((invitation: { status: string }) => invitation.status)).toContain('pending')
    const statuses = (await demo.context.db.all<{ status: string }>('SELECT DISTINCT status FROM invitations')).map((row) => row.status)
    expect(statuses.sort()).toEqual(['accepted', 'declined', 'pending'])

    // Players with a display name have a picture, served where other players see it.
    const players = (await demo.client.get(`/rooms/${morning.room_id}`, alice.access)).body.players
    expect(players.map((player: { avatar_url: string | null }) => typeof player.avatar_url)).toEqual(['string', 'string'])
    const picture = await demo.app.handle(new Request(`http://localhost${players[0].avatar_url}`))
    expect([picture.status, picture.headers.get('content-type')]).toEqual([200, 'image/webp'])
    expect((await demo.client.get('/users/me', (await demo.client.login('dave', DEMO_PASSWORD)).access)).body.avatar_url).toBeNull()
    // Profiles as documented, and what alice has linked and written to the control room.
    const aliceProfile = (await demo.client.get('/users/me', alice.access)).body
    expect(aliceProfile).toMatchObject({ display_name: 'Alice, shift lead', email: 'alice@example.com', phone: '+79160000001', locale: 'ru-RU', time_zone: 'Europe/Moscow' })
    expect(aliceProfile.linked_accounts).toMatchObject([{ social_network: 'vk', connection_link: 'https://vk.com/alice_morozova' }])
    expect((await demo.client.get(`/dms/${admin.userId}/messages`, alice.access)).body.messages).toHaveLength(2)

    const total = async () => (await demo.context.db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM users'))?.total
    const before = await total()
    const { seedDemoData } = await import('../../src/seed')
    expect(await seedDemoData(demo.context)).toBe(false)
    expect(await total()).toBe(before)
  })
})
