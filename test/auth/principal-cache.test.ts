import { afterAll, describe, expect, test } from 'bun:test'
import { SQL } from 'bun'
import { loadConfig } from '../../src/config'
import { closeTestResources, createTestApp, freshDatabaseUrl, onlyOn, STORE, TEST_ENV } from '../support/harness'
import { natsAvailable, natsBus, privateNats } from '../support/nats'
import { type ServiceProcess, startService } from '../support/process'

// PRINCIPAL_CACHE: a live session and its account held in memory, so that a known session costs no
// store read, and forgotten as soon as a change to either commits: at once on the instance that
// made it, within the notification delay on the others, and never trusted while the bus may have
// missed a notice.

const running: ServiceProcess[] = []
afterAll(async () => {
  for (const service of running) service.child.kill('SIGKILL')
  await Promise.all(running.map((service) => service.child.exited))
  await closeTestResources()
})

const CACHED = { PRINCIPAL_CACHE: 'true' }

test('PRINCIPAL_CACHE is refused on SQLite at start-up, naming the variable: instances sharing a file could not tell each other what to forget', () => {
  expect(() => loadConfig({ ...TEST_ENV, ...CACHED, DATABASE_URL: 'sqlite:data/shared.sqlite' })).toThrow('PRINCIPAL_CACHE needs PostgreSQL')
  expect(loadConfig({ ...TEST_ENV, ...CACHED, DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres' }).principalCache).toEqual({ maxEntries: 20_000 })
})

describe.if(onlyOn('postgres', 'the principal cache (PostgreSQL only)'))(`the principal cache on ${STORE}`, () => {
  test('a known session costs no store read: a change made behind the service\'s back is not seen, where without the cache it is', async () => {
    for (const [env, seen] of [
      [CACHED, 200],
      [{}, 401],
    ] as const) {
      const t = await createTestApp(env)
      const user = await t.client.register('pc_behind')
      expect((await t.client.get('/auth/me', user.access)).status).toBe(200)
      // On PostgreSQL the cache is trusted from the bus's first heartbeat on, a moment after the start.
      for (let tries = 0; env === CACHED && t.context.principals?.size === 0 && tries < 100; tries++) {
        await Bun.sleep(20)
        await t.client.get('/auth/me', user.access)
      }
      // A revocation no event tells of (never done by the service itself).
      await t.context.db.run('UPDATE sessions SET revoked_at = $1', [new Date().toISOString()])
      expect({ env, status: (await t.client.get('/auth/me', user.access)).status }).toEqual({ env, status: seen })
    }
  })

  test('every end or change made through the service bites on the very next request: logout, a password change, deactivation, demotion, deletion, a profile change', async () => {
    const t = await createTestApp(CACHED)
    const admin = await t.client.loginAdmin()
    const me = async (session: { access: string }) => t.client.get('/auth/me', session.access)

    const leaving = await t.client.register('pc_logout')
    expect((await me(leaving)).status).toBe(200)
    await t.client.post('/auth/logout', undefined, leaving.access)
    expect((await me(leaving)).status).toBe(401)

    const owner = await t.client.register('pc_password', 'old-password-1')
    const other = await t.client.login('pc_password', 'old-password-1')
    const before = (await me(owner)).body
    expect((await me(other)).status).toBe(200)
    expect((await t.client.post('/auth/change-password', { current_password: 'old-password-1', new_password: 'new-password-1' }, owner.access)).status).toBe(200)
    expect((await me(other)).status).toBe(401)
    expect((await me(owner)).body.updated_at).not.toBe(before.updated_at)

    const idle = await t.client.register('pc_deactivated')
    expect((await me(idle)).status).toBe(200)
    await t.client.post(`/users/${idle.userId}/deactivate`, undefined, admin.access)
    expect((await me(idle)).status).toBe(401)

    const promoted = await t.client.register('pc_demoted')
    expect((await t.client.put(`/users/${promoted.userId}`, { user_role: 'admin' }, admin.access)).status).toBe(200)
    expect((await t.client.get('/users', promoted.access)).status).toBe(200)
    expect((await t.client.put(`/users/${promoted.userId}`, { user_role: 'user' }, admin.access)).status).toBe(200)
    expect((await t.client.get('/users', promoted.access)).status).toBe(403)

    const renamed = await t.client.register('pc_profile')
    expect((await me(renamed)).body.display_name).toBeNull()
    await t.client.put(`/users/${renamed.userId}`, { display_name: 'Chief Engineer' }, admin.access)
    expect((await me(renamed)).body.display_name).toBe('Chief Engineer')

    const deleted = await t.client.register('pc_deleted')
    expect((await me(deleted)).status).toBe(200)
    await t.client.delete(`/users/${deleted.userId}`, admin.access)
    expect((await me(deleted)).status).toBe(401)
  })

  test('it holds PRINCIPAL_CACHE_SIZE sessions at most; the others are read from the store as before', async () => {
    const t = await createTestApp({ ...CACHED, PRINCIPAL_CACHE_SIZE: '2' })
    const sessions = [await t.client.register('pc_size_1'), await t.client.register('pc_size_2'), await t.client.register('pc_size_3')]
    for (let round = 0; round < 3; round++) for (const session of sessions) expect((await t.client.get('/auth/me', session.access)).status).toBe(200)
    expect(t.context.principals && t.context.principals.size).toBe(2)
    await t.client.post('/auth/logout', undefined, sessions[0]!.access)
    expect((await t.client.get('/auth/me', sessions[0]!.access)).status).toBe(401)
  })
})

describe.if(onlyOn('postgres', 'the principal cache across two instances (a bus needs PostgreSQL)'))('the principal cache across PostgreSQL instances', () => {
  async function twoInstances(bus: Record<string, string> = {}, busOfB = bus) {
    const env = { ...TEST_ENV, ...CACHED, LOG_LEVEL: 'error', DATABASE_URL: await freshDatabaseUrl() }
    const [a, b] = await Promise.all([startService({ ...env, ...bus }), startService({ ...env, ...busOfB })])
    running.push(a, b)
    return { a, b, env }
  }

  /** Milliseconds until `session` is refused on `service`, asking again and again; throws past `limit`. */
  async function refusedWithin(service: ServiceProcess, session: { access: string }, limit: number): Promise<number> {
    const started = performance.now()
    for (;;) {
      const status = (await service.client.get('/auth/me', session.access)).status
      const elapsed = performance.now() - started
      if (status === 401) return elapsed
      if (elapsed > limit) throw new Error(`still ${status} after ${Math.round(elapsed)} ms`)
    }
  }

  for (const [engine, bus] of [
    ['LISTEN/NOTIFY', () => ({})],
    ['NATS', () => natsBus()],
  ] as const)
    test.if(engine !== 'NATS' || natsAvailable)(`woken by ${engine}: a logout on A is refused on B once the notice arrives; a hundred of them, each within a second (p99 and maximum printed)`, async () => {
      const { a, b } = await twoInstances(bus())
      await a.client.register('pc_across', 'across-password')
      const delays: number[] = []
      for (let i = 0; i < 100; i++) {
        const session = await a.client.login('pc_across', 'across-password')
        expect((await b.client.get('/auth/me', session.access)).status).toBe(200)
        expect((await a.client.post('/auth/logout', undefined, session.access)).status).toBe(200)
        delays.push(await refusedWithin(b, session, 1000))
      }
      delays.sort((x, y) => x - y)
      console.log(`principal cache (${engine}): a logout on A refused on B after p50 ${delays[50]!.toFixed(1)} ms, p99 ${delays[98]!.toFixed(1)} ms, max ${delays[99]!.toFixed(1)} ms`)
    }, 120_000)

  test('when the listening connections are cut, a logout made meanwhile is refused on B within the heartbeat timeout, and never accepted again', async () => {
    const { a, b, env } = await twoInstances()
    const user = await a.client.register('pc_cut', 'cut-password')
    const admin = new SQL(env.DATABASE_URL, { max: 1 })
    try {
      expect((await b.client.get('/auth/me', user.access)).status).toBe(200)
      await admin.unsafe("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'")
      expect((await a.client.post('/auth/logout', undefined, user.access)).status).toBe(200)
      await refusedWithin(b, user, 3500)
      for (let i = 0; i < 50; i++) {
        expect((await b.client.get('/auth/me', user.access)).status).toBe(401)
        await Bun.sleep(20)
      }
    } finally {
      await admin.close()
    }
  }, 30_000)

  // NATS_LOOK_INTERVAL=60 below: what is proved comes from the heartbeats and the reconnection, not from a look at the log.
  test.if(natsAvailable)('woken by NATS: while NATS is down, a logout made meanwhile is refused on B within the heartbeat timeout, and never accepted again', async () => {
    const nats = await privateNats()
    const { a, b } = await twoInstances({ ...natsBus(nats.url), NATS_LOOK_INTERVAL: '60' })
    const user = await a.client.register('pc_nats_down', 'down-password')
    expect((await b.client.get('/auth/me', user.access)).status).toBe(200)
    await nats.stop()
    expect((await a.client.post('/auth/logout', undefined, user.access)).status).toBe(200)
    await refusedWithin(b, user, 3500)
    await nats.start()
    for (let i = 0; i < 50; i++) {
      expect((await b.client.get('/auth/me', user.access)).status).toBe(401)
      await Bun.sleep(20)
    }
    await nats.stop()
  }, 30_000)

  test.if(natsAvailable)('woken by NATS: a logout whose notice never reaches B (A publishes to another NATS server) is refused on B within two looks at the log', async () => {
    const [x, y] = await Promise.all([privateNats(), privateNats()])
    const prefix = natsBus().NATS_SUBJECT_PREFIX
    const { a, b } = await twoInstances({ ...natsBus(x.url), NATS_SUBJECT_PREFIX: prefix }, { ...natsBus(y.url), NATS_SUBJECT_PREFIX: prefix })
    await a.client.register('pc_nats_unheard', 'unheard-password')
    for (let i = 0; i < 5; i++) {
      const session = await a.client.login('pc_nats_unheard', 'unheard-password')
      expect((await b.client.get('/auth/me', session.access)).status).toBe(200)
      expect((await a.client.post('/auth/logout', undefined, session.access)).status).toBe(200)
      // NATS_LOOK_INTERVAL is 1 s: two looks, and a little time.
      await refusedWithin(b, session, 2500)
    }
    await Promise.all([x.stop(), y.stop()])
  }, 60_000)
})
