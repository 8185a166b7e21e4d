import { afterAll, afterEach, describe, expect, spyOn, test } from 'bun:test'
import { networkOf } from '../../src/lib/client-address'
import { closeTestResources, createTestApp, startTestServer, STORE } from '../support/harness'

afterAll(closeTestResources)

describe(`password storage on ${STORE} (SECURITY 9, 10, 11)`, () => {
  test('the stored hash is argon2id at or above m=19 MiB, t=2, p=1, and the defaults are m=64 MiB, t=2', async () => {
    const t = await createTestApp({ PASSWORD_MEMORY_COST: '65536' })
    const user = await t.client.register('phc_user')
    const row = await t.context.db.get<{ password_hash: string }>('SELECT password_hash FROM users WHERE user_id = $1', [user.userId])
    const match = row?.password_hash.match(/^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/)
    expect(match).not.toBeNull()
    const [, m, time, p] = match!.map(Number)
    expect({ m, t: time, p }).toEqual({ m: 65536, t: 2, p: 1 })
    expect(m).toBeGreaterThanOrEqual(19456)
    expect(row?.password_hash).not.toContain('password-123')
  })

  describe('login verification', () => {
    let spy: ReturnType<typeof spyOn> | undefined
    afterEach(() => spy?.mockRestore())

    test('an unknown username costs the same argon2id verification as a wrong password, from the first login on', async () => {
      const t = await createTestApp()
      await t.client.register('timing_user')
      const hashes = spyOn(Bun.password, 'hash')
      spy = spyOn(Bun.password, 'verify')
      // No hash is made for the dummy on first use: that took twice as long as any later login.
      expect((await t.client.post('/auth/login', { username: 'first_unknown', password: 'whatever-1' })).status).toBe(401)
      expect(hashes.mock.calls.length).toBe(0)
      hashes.mockRestore()
      expect(String(spy.mock.calls[0]?.[1])).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
      spy.mockClear()
      await t.client.post('/auth/login', { username: 'timing_user', password: 'wrong-password' })
      const forWrongPassword = spy.mock.calls.length
      await t.client.post('/auth/login', { username: 'no_such_user', password: 'wrong-password' })
      expect(forWrongPassword).toBe(1)
      expect(spy.mock.calls.length - forWrongPassword).toBe(1)
    })
  })

  test('fifty parallel logins never run more than HASH_CONCURRENCY hashes at once', async () => {
    const server = await startTestServer({ HASH_CONCURRENCY: '2', LOGIN_MAX_FAILURES: '1000', LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' })
    await server.client.register('crowd_user')
    const replies = await Promise.all(Array.from({ length: 50 }, () => server.client.post('/auth/login', { username: 'crowd_user', password: 'password-123' })))
    expect(replies.every((reply) => reply.status === 200)).toBe(true)
    expect(server.context.passwords.peakConcurrency).toBe(2)
  })
})

describe(`the hashing queue on ${STORE} (SECURITY 23)`, () => {
  let spy: ReturnType<typeof spyOn> | undefined
  afterEach(() => spy?.mockRestore())
  const viaProxy = (server: Awaited<ReturnType<typeof startTestServer>>, address: string, body: object, signal?: AbortSignal) =>
    fetch(`${server.baseUrl}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify(body),
      signal,
    })

  test('one address flooding logins delays another address by about one hash, not by its whole burst', async () => {
    const server = await startTestServer({
      TRUST_PROXY: 'true',
      HASH_CONCURRENCY: '1',
      HASH_QUEUE_PER_CLIENT: '8',
      LOGIN_MAX_FAILURES_PER_ADDRESS: '1000',
      // Hashes long enough that the legitimate login's own way to the queue is short beside one.
      PASSWORD_MEMORY_COST: '65536',
    })
    await server.client.register('patient_player')
    const finished: string[] = []
    const flood = Array.from({ length: 100 }, (_, i) =>
      viaProxy(server, '203.0.113.66', { username: `flood_${i}`, password: 'wrong-password' }).then((response) => {
        if (response.status === 401) finished.push('flood')
        return response.status
      }),
    )
    await Bun.sleep(30)
    const finishedBefore = finished.length
    const legit = viaProxy(server, '198.51.100.7', { username: 'patient_player', password: 'password-123' }).then((response) => {
      finished.push('legit')
      return response.status
    })
    const statuses = await Promise.all(flood)
    expect(await legit).toBe(200)
    // The flood got its share of the queue and no more; the rest were told to slow down at once.
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(8)
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(92)
    // Served in turn: at most the flood's check running then and its next one go first (in arrival order, seven would).
    expect(finished.indexOf('legit') - finishedBefore).toBeLessThanOrEqual(2)
  })

  test('a full queue answers 503 with Retry-After at once, and the service recovers', async () => {
    const server = await startTestServer({
      TRUST_PROXY: 'true',
      HASH_CONCURRENCY: '1',
      HASH_QUEUE_LIMIT: '2',
      LOGIN_MAX_FAILURES: '1000',
      LOGIN_MAX_FAILURES_PER_ADDRESS: '1000',
      // Slow hashes, so that all twenty arrive while the first runs even on a loaded machine (CI once let a fourth in).
      PASSWORD_TIME_COST: '10',
    })
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => viaProxy(server, `192.0.2.${i + 1}`, { username: `crowd_${i}`, password: 'wrong-password' })),
    )
    const busy = replies.filter((response) => response.status === 503)
    expect(replies.filter((response) => response.status === 401).length).toBe(3)
    expect(busy.length).toBe(17)
    for (const response of busy) {
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(((await response.json()) as { error: string }).error).toBe('unavailable')
    }
    // A refused check gave its login slots back: it was never a guess.
    const counted = await server.context.db.get<{ total: number }>(
      "SELECT CAST(sum(failures) AS INTEGER) AS total FROM login_throttle WHERE throttle_key LIKE 'account:%'",
    )
    expect(counted?.total).toBe(3)
    expect((await server.client.post('/auth/login', { username: 'root_admin', password: 'root-admin-password' })).status).toBe(200)
  })

  test('a client that goes away while its check waits costs no hash', async () => {
    const server = await startTestServer({ HASH_CONCURRENCY: '1', PASSWORD_MEMORY_COST: '131072', LOGIN_MAX_FAILURES_PER_ADDRESS: '1000' })
    await server.client.register('first_in_line')
    spy = spyOn(Bun.password, 'verify')
    const running = server.client.post('/auth/login', { username: 'first_in_line', password: 'password-123' })
    // The first check holds the only hashing slot before the others come (a fixed sleep was too short on a busy PostgreSQL).
    for (const deadline = Date.now() + 5000; spy.mock.calls.length === 0 && Date.now() < deadline; ) await Bun.sleep(2)
    expect(spy.mock.calls.length).toBe(1)
    const quitter = new AbortController()
    const abandoned = Array.from({ length: 5 }, (_, i) =>
      fetch(`${server.baseUrl}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: `quitter_${i}`, password: 'wrong-password' }),
        signal: quitter.signal,
      }).catch(() => 'aborted'),
    )
    await Bun.sleep(20)
    quitter.abort()
    expect(await Promise.all(abandoned)).toEqual(Array(5).fill('aborted'))
    expect((await running).status).toBe(200)
    await Bun.sleep(50)
    expect(spy.mock.calls.length).toBe(1)
  })
})

describe(`brute force on ${STORE} (SECURITY 12)`, () => {
  const wrong = (username: string) => ({ username, password: 'wrong-password' })

  test('locks after LOGIN_MAX_FAILURES, answers 429 with Retry-After whatever the password, and stops counting', async () => {
    const t = await createTestApp({ LOGIN_MAX_FAILURES: '3', LOGIN_WINDOW: '600' })
    await t.client.register('target_user')
    for (let attempt = 0; attempt < 3; attempt++) expect((await t.client.post('/auth/login', wrong('target_user'))).status).toBe(401)
    const locked = await t.client.post('/auth/login', { username: 'target_user', password: 'password-123' })
    expect(locked.status).toBe(429)
    expect(locked.body.error).toBe('rate_limited')
    const retryAfter = Number(locked.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThan(590)
    expect(retryAfter).toBeLessThanOrEqual(600)
    for (let attempt = 0; attempt < 3; attempt++) expect((await t.client.post('/auth/login', wrong('target_user'))).status).toBe(429)
    const counter = await t.context.db.get<{ failures: number }>("SELECT failures FROM login_throttle WHERE throttle_key = 'account:target_user'")
    expect(counter?.failures).toBe(3)
  })

  test('a lock-out never tells whether the account exists', async () => {
    const t = await createTestApp({ LOGIN_MAX_FAILURES: '2' })
    await t.client.register('real_user')
    for (const username of ['real_user', 'ghost_user']) for (let i = 0; i < 2; i++) await t.client.post('/auth/login', wrong(username))
    const real = await t.client.post('/auth/login', wrong('real_user'))
    const ghost = await t.client.post('/auth/login', wrong('ghost_user'))
    expect([real.status, ghost.status]).toEqual([429, 429])
    expect(real.body.message).toBe(ghost.body.message)
  })

  test('a success resets the counter, and case variants of a username share one', async () => {
    const t = await createTestApp({ LOGIN_MAX_FAILURES: '3' })
    await t.client.register('Case_User')
    await t.client.post('/auth/login', wrong('case_user'))
    await t.client.post('/auth/login', wrong('CASE_USER'))
    expect((await t.client.post('/auth/login', { username: 'Case_User', password: 'password-123' })).status).toBe(200)
    await t.client.post('/auth/login', wrong('case_USER'))
    await t.client.post('/auth/login', wrong('CASE_user'))
    expect((await t.client.post('/auth/login', wrong('Case_User'))).status).toBe(401)
    expect((await t.client.post('/auth/login', { username: 'case_user', password: 'password-123' })).status).toBe(429)
  })

  test('the lock-out ends after LOGIN_WINDOW', async () => {
    const t = await createTestApp({ LOGIN_MAX_FAILURES: '1', LOGIN_WINDOW: '1' })
    await t.client.register('patient_user')
    await t.client.post('/auth/login', wrong('patient_user'))
    expect((await t.client.post('/auth/login', { username: 'patient_user', password: 'password-123' })).status).toBe(429)
    await Bun.sleep(1100)
    expect((await t.client.post('/auth/login', { username: 'patient_user', password: 'password-123' })).status).toBe(200)
  })

  test('per client address: a spoofed X-Forwarded-For does not escape the lock unless TRUST_PROXY', async () => {
    const limits = { LOGIN_MAX_FAILURES: '100', LOGIN_MAX_FAILURES_PER_ADDRESS: '3' }
    const direct = await startTestServer(limits)
    for (let i = 0; i < 3; i++) await direct.client.post('/auth/login', wrong(`sprayed_${i}`))
    const spoofed = await direct.client.call('POST', '/auth/login', { body: wrong('sprayed_9'), headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(spoofed.status).toBe(429)

    const proxied = await startTestServer({ ...limits, TRUST_PROXY: 'true' })
    const viaProxy = (address: string, username: string) =>
      proxied.client.call('POST', '/auth/login', { body: wrong(username), headers: { 'x-forwarded-for': `198.51.100.1, ${address}` } })
    for (let i = 0; i < 3; i++) await viaProxy('203.0.113.1', `spray_${i}`)
    expect((await viaProxy('203.0.113.1', 'spray_9')).status).toBe(429)
    expect((await viaProxy('203.0.113.2', 'spray_9')).status).toBe(401)
  })
})

describe(`one IPv6 host is one client on ${STORE} (SECURITY 12, 23)`, () => {
  test('an IPv6 address counts as its /64; IPv4, IPv4-mapped and odd values as they are', () => {
    expect(networkOf('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64')
    expect(networkOf('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(networkOf('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(networkOf('::1')).toBe('0:0:0:0::/64')
    expect(networkOf('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(networkOf('192.0.2.7')).toBe('192.0.2.7')
    expect(networkOf('not:an:address:at:all')).toBe('not:an:address:at:all')
  })

  test('failed logins from any address of one /64 share one lock-out; another /64 does not', async () => {
    const server = await startTestServer({ TRUST_PROXY: 'true', LOGIN_MAX_FAILURES: '100', LOGIN_MAX_FAILURES_PER_ADDRESS: '3' })
    const from = (address: string, i: number) =>
      server.client.call('POST', '/auth/login', { body: { username: `v6_${i}`, password: 'wrong-password' }, headers: { 'x-forwarded-for': address } })
    for (let i = 0; i < 3; i++) expect((await from(`2001:db8:1:2::${(i + 1).toString(16)}`, i)).status).toBe(401)
    expect((await from('2001:db8:1:2:dead:beef:0:1', 9)).status).toBe(429)
    expect((await from('2001:db8:1:3::1', 9)).status).toBe(401)
  })
})

describe(`registration races on ${STORE} (SECURITY 18)`, () => {
  test('fifty concurrent registrations of one username in case variants: exactly one 201', async () => {
    const server = await startTestServer()
    const variants = ['racer', 'RACER', 'Racer', 'rAcEr', 'racER']
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => server.client.post('/auth/registrate', { username: variants[i % variants.length], password: 'password-123' })),
    )
    const statuses = replies.map((reply) => reply.status)
    expect(statuses.filter((status) => status === 201)).toHaveLength(1)
    expect(statuses.filter((status) => status === 409)).toHaveLength(49)
    const row = await server.context.db.get<{ total: number }>("SELECT CAST(count(*) AS INTEGER) AS total FROM users WHERE lower(username) = 'racer'")
    expect(row?.total).toBe(1)
  })
})

describe(`bursts against the limits on ${STORE} (SECURITY 21)`, () => {
  let spy: ReturnType<typeof spyOn> | undefined
  afterEach(() => spy?.mockRestore())

  test('forty concurrent logins for one account, the right password among them: no more than the limit are evaluated', async () => {
    const server = await startTestServer({ LOGIN_MAX_FAILURES: '5' })
    await server.client.register('burst_target')
    spy = spyOn(Bun.password, 'verify')
    const attempts = Array.from({ length: 40 }, (_, i) => ({ username: 'burst_target', password: i === 20 ? 'password-123' : `wrong-guess-${i}` }))
    const replies = await Promise.all(attempts.map((body) => server.client.post('/auth/login', body)))
    const statuses = replies.map((reply) => reply.status)
    expect(spy.mock.calls.length).toBeLessThanOrEqual(5)
    expect(statuses.filter((status) => status === 401 || status === 200).length).toBe(spy.mock.calls.length)
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(35)
    expect(replies.filter((reply) => reply.status === 429).every((reply) => Number(reply.headers.get('retry-after')) > 0)).toBe(true)
  })

  test('a hundred concurrent failures from one address, each for another name: no more than the address limit are evaluated', async () => {
    const server = await startTestServer({ LOGIN_MAX_FAILURES_PER_ADDRESS: '10' })
    spy = spyOn(Bun.password, 'verify')
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => server.client.post('/auth/login', { username: `sprayed_${i}`, password: 'wrong-password' })),
    )
    const statuses = replies.map((reply) => reply.status)
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(10)
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(90)
    expect(spy.mock.calls.length).toBeLessThanOrEqual(10)
  })

  test('successful logins give their address slot back, so people behind one address are not locked out', async () => {
    const server = await startTestServer({ LOGIN_MAX_FAILURES_PER_ADDRESS: '3' })
    await server.client.register('shared_address')
    for (let i = 0; i < 6; i++) expect((await server.client.post('/auth/login', { username: 'shared_address', password: 'password-123' })).status).toBe(200)
  })

  test('concurrent successful logins give every address slot back: no count is lost between a reservation and a release', async () => {
    const server = await startTestServer({ LOGIN_MAX_FAILURES_PER_ADDRESS: '8', LOGIN_MAX_FAILURES: '1000' })
    await server.client.register('busy_office')
    const statuses: number[] = []
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 6; i++) statuses.push((await server.client.post('/auth/login', { username: 'busy_office', password: 'password-123' })).status)
      }),
    )
    expect(statuses.filter((status) => status !== 200)).toEqual([])
    const address = await server.context.db.get<{ failures: number }>("SELECT failures FROM login_throttle WHERE throttle_key LIKE 'address:%'")
    expect(Number(address?.failures ?? 0)).toBe(0)
  })

  test('change-password: guesses of the current password are limited, in bursts and one by one, and a lock refuses the right one', async () => {
    const server = await startTestServer({ LOGIN_MAX_FAILURES: '4' })
    const user = await server.client.register('guessed_user')
    const guess = (current_password: string) => server.client.post('/auth/change-password', { current_password, new_password: 'new-password-456' }, user.access)
    spy = spyOn(Bun.password, 'verify')
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => guess(`wrong-guess-${i}`)))
    expect(spy.mock.calls.length).toBeLessThanOrEqual(4)
    expect(burst.filter((reply) => reply.status === 429).length).toBeGreaterThanOrEqual(26)
    const right = await guess('password-123')
    expect(right.status).toBe(429)
    expect(right.body.error).toBe('rate_limited')
    // The lock is on changing the password, not on logging in.
    expect((await server.client.post('/auth/login', { username: 'guessed_user', password: 'password-123' })).status).toBe(200)
  })
})
