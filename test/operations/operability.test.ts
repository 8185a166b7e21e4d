import { afterAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, expectEnvelope, STORE } from '../support/harness'
import { lobby } from '../support/lobby'

afterAll(closeTestResources)

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** A strict reader of the Prometheus text format: throws on any line that is not HELP, TYPE or a sample. */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  expect(text.endsWith('\n')).toBe(true)
  for (const line of text.trimEnd().split('\n')) {
    const type = line.match(/^# TYPE ([a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)$/)
    if (type) {
      expect(types.has(type[1]!)).toBe(false)
      types.set(type[1]!, type[2]!)
      continue
    }
    if (/^# HELP [a-zA-Z_:][\w:]* .+$/.test(line)) continue
    const sample = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (-?[\d.e+-]+|\+Inf|NaN)$/)
    if (!sample) throw new Error(`not Prometheus text: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (sample[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    const family = sample[1]!.replace(/_(bucket|sum|count)$/, '')
    if (!types.has(sample[1]!) && !types.has(family)) throw new Error(`sample before its TYPE: ${line}`)
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) })
  }
  return { types, samples }
}

/** Request logs and metrics are written after the answer has gone out (onAfterResponse). */
const afterResponses = () => Bun.sleep(10)

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))?.value

describe(`metrics on ${STORE}`, () => {
  test('GET /metrics is valid Prometheus text with requests by route template, logins, sessions, users, rooms and the process', async () => {
    const t = await createTestApp({ LOGIN_MAX_FAILURES: '2' })
    const rooms = lobby(t.client)
    const user = await t.client.register('metered_user')
    const admin = await t.client.loginAdmin()
    await rooms.createRoom(user)
    await t.client.get(`/users/${user.userId}`, admin.access)
    for (let i = 0; i < 3; i++) await t.client.post('/auth/login', { username: 'metered_user', password: 'wrong-password' })
    await afterResponses()

    const reply = await t.app.handle(new Request('http://localhost/metrics'))
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toStartWith('text/plain; version=0.0.4')
    const text = await reply.text()
    const { types, samples } = parsePrometheus(text)

    expect(types.get('http_requests_total')).toBe('counter')
    expect(types.get('http_request_duration_seconds')).toBe('histogram')
    expect(find(samples, 'http_requests_total', { method: 'GET', route: '/users/:user_id', status: '200' })).toBe(1)
    expect(find(samples, 'http_requests_total', { method: 'POST', route: '/auth/login', status: '429' })).toBe(1)
    expect(text).not.toContain(user.userId) // route templates only, never raw paths

    // One histogram series: cumulative buckets, ending in +Inf, which equals the count.
    const series = { method: 'POST', route: '/auth/login', status: '401' }
    const buckets = samples.filter((sample) => sample.name === 'http_request_duration_seconds_bucket' && sample.labels.status === '401' && sample.labels.route === series.route)
    const values = buckets.map((bucket) => bucket.value)
    expect(values).toEqual([...values].sort((a, b) => a - b))
    expect(buckets.at(-1)?.labels.le).toBe('+Inf')
    expect(buckets.at(-1)?.value).toBe(find(samples, 'http_request_duration_seconds_count', series)!)
    expect(find(samples, 'http_request_duration_seconds_count', series)).toBe(2)

    expect(find(samples, 'auth_login_failures_total')).toBe(2)
    expect(find(samples, 'auth_lockouts_total', { kind: 'account' })).toBe(1)
    expect(find(samples, 'sessions_active')).toBe(2)
    expect(find(samples, 'users', { status: 'active' })).toBe(2)
    expect(find(samples, 'rooms_open')).toBe(1)
    for (const gauge of ['password_hashes_in_flight', 'process_resident_memory_bytes', 'process_heap_used_bytes', 'process_uptime_seconds', 'http_requests_in_flight'])
      expect({ gauge, type: types.get(gauge) }).toEqual({ gauge, type: 'gauge' })
    expect(find(samples, 'process_resident_memory_bytes')).toBeGreaterThan(1_000_000)
  })

  test('every counter is there at 0 from start-up, so that increase() sees the first event after a restart', async () => {
    const fresh = await createTestApp()
    const { types, samples } = parsePrometheus(await (await fresh.app.handle(new Request('http://localhost/metrics'))).text())
    expect(find(samples, 'auth_login_failures_total')).toBe(0)
    for (const kind of ['account', 'address', 'password_change']) expect({ kind, value: find(samples, 'auth_lockouts_total', { kind }) }).toEqual({ kind, value: 0 })
    expect(types.get('auth_lockouts_total')).toBe('counter')
    expect(find(samples, 'password_checks_waiting')).toBe(0)
  })

  test('gauges counted in the store are read at most every 15 s, however many scrapes come', async () => {
    const t = await createTestApp()
    const sessions = async () => find(parsePrometheus(await (await t.app.handle(new Request('http://localhost/metrics'))).text()).samples, 'sessions_active')
    const before = await sessions()
    await t.client.register('unseen_yet')
    const scrapes = await Promise.all(Array.from({ length: 10 }, sessions))
    expect(scrapes).toEqual(Array(10).fill(before))
  })

  test('METRICS_ENABLED=false removes the route', async () => {
    const t = await createTestApp({ METRICS_ENABLED: 'false' })
    expect((await t.client.get('/metrics')).status).toBe(404)
  })

  test('with METRICS_TOKEN set, only a scraper sending it reads /metrics', async () => {
    const token = 'scrape-token-0123456789'
    const t = await createTestApp({ METRICS_TOKEN: token })
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${token}`, `Bearer ${token}x`]) {
      const reply = await t.client.call('GET', '/metrics', { headers: authorization ? { authorization } : {} })
      expect({ authorization, status: reply.status }).toEqual({ authorization, status: 401 })
      expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="metrics"')
      expect(JSON.stringify(reply.body)).not.toContain('http_requests_total')
    }
    const scraped = await t.client.call('GET', '/metrics', { headers: { authorization: `Bearer ${token}` } })
    expect(scraped.status).toBe(200)
    expect(String(scraped.body)).toContain('# TYPE http_requests_total counter')
  })
})

describe(`logs and request ids on ${STORE}`, () => {
  test('one JSON line per request with id, method, route template, status and duration; X-Request-Id kept or made', async () => {
    const lines: string[] = []
    const t = await createTestApp({ LOG_LEVEL: 'info' }, (line) => lines.push(line))
    lines.length = 0
    const traced = await t.client.call('GET', '/health', { headers: { 'x-request-id': 'trace-42' } })
    expect(traced.headers.get('x-request-id')).toBe('trace-42')
    const made = await t.client.get('/auth/me')
    const madeId = made.headers.get('x-request-id')
    expect(madeId).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/)
    const hostile = await t.client.call('GET', '/health', { headers: { 'x-request-id': 'bad id\twith "quotes"' } })
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/)
    expect(hostile.headers.get('x-request-id')).not.toBe(madeId)
    await afterResponses()

    const entries = lines.map((line) => JSON.parse(line))
    expect(entries).toHaveLength(3)
    expect(entries[0]).toMatchObject({ level: 'info', message: 'request', request_id: 'trace-42', method: 'GET', route: '/health', status: 200 })
    expect(entries[1]).toMatchObject({ request_id: made.headers.get('x-request-id'), route: '/auth/me', status: 401 })
    for (const entry of entries) {
      expect(entry.time).toMatch(/Z$/)
      expect(entry.duration_ms).toBeNumber()
    }
  })

  test('answers that fail before a route handles them still carry an id and get a log line', async () => {
    const lines: string[] = []
    const t = await createTestApp({ LOG_LEVEL: 'info', MAX_BODY_BYTES: '1024' }, (line) => lines.push(line))
    lines.length = 0
    const json = { 'content-type': 'application/json' }
    const replies = [
      await t.client.call('GET', '/no/such/route', { headers: { 'x-request-id': 'lost-1' } }),
      await t.client.call('POST', '/auth/login', { headers: { ...json, 'x-request-id': 'broken-2' }, body: '{"username":' }),
      await t.client.call('POST', '/auth/login', { headers: { ...json, 'x-request-id': 'huge-3' }, body: JSON.stringify({ username: 'x'.repeat(2048) }) }),
      await t.client.call('POST', '/auth/login', { headers: { 'content-type': 'text/plain', 'x-request-id': 'text-4' }, body: 'hello' }),
    ]
    expect(replies.map((reply) => [reply.status, reply.headers.get('x-request-id')])).toEqual([
      [404, 'lost-1'],
      [400, 'broken-2'],
      [413, 'huge-3'],
      [415, 'text-4'],
    ])
    await afterResponses()
    const entries = lines.map((line) => JSON.parse(line))
    expect(entries.map((entry) => [entry.request_id, entry.status])).toEqual([
      ['lost-1', 404],
      ['broken-2', 400],
      ['huge-3', 413],
      ['text-4', 415],
    ])
    expect(entries[0].route).toBe('unmatched')
  })

  test('no password, token or ct ever reaches the log, even at debug level', async () => {
    const lines: string[] = []
    const t = await createTestApp({ LOG_LEVEL: 'debug' }, (line) => lines.push(line))
    const rooms = lobby(t.client)
    const owner = await t.client.register('secretive_owner', 'owner-secret-password')
    const guest = await t.client.register('secretive_guest', 'guest-secret-password')
    const refreshed = await t.client.post('/auth/refresh', { refresh_token: guest.refresh })
    const room = await rooms.createRoom(owner)
    const invitation = await rooms.seat(owner, room.room_id, guest)
    await t.client.post('/auth/login', { username: 'secretive_owner', password: 'a-wrong-secret-password' })
    await t.client.call('GET', '/auth/me', { headers: { authorization: `Bearer ${owner.access}` } })
    await afterResponses()
    const log = lines.join('\n')
    expect(lines.length).toBeGreaterThan(5)
    for (const secret of [
      'owner-secret-password',
      'guest-secret-password',
      'a-wrong-secret-password',
      owner.access,
      owner.refresh,
      guest.refresh,
      refreshed.body.refresh_token.token,
      invitation.ct,
      'root-admin-password',
    ])
      expect(log).not.toContain(secret)
  })

  test('LOG_LEVEL=warn keeps request lines out', async () => {
    const lines: string[] = []
    const t = await createTestApp({ LOG_LEVEL: 'warn' }, (line) => lines.push(line))
    await t.client.get('/health')
    await afterResponses()
    expect(lines.filter((line) => line.includes('"request"'))).toEqual([])
  })
})

describe(`abuse limits on ${STORE}`, () => {
  test('registration, login and refresh share a per-address rate limit: 429 with Retry-After, other routes unaffected', async () => {
    const t = await createTestApp({ AUTH_RATE_LIMIT: '3', AUTH_RATE_WINDOW: '60' })
    await t.client.register('limited_user')
    await t.client.post('/auth/login', { username: 'limited_user', password: 'password-123' })
    await t.client.post('/auth/refresh', { refresh_token: 'whatever-token' })
    const limited = await t.client.post('/auth/login', { username: 'limited_user', password: 'password-123' })
    expect(limited.status).toBe(429)
    expect(expectEnvelope(limited)).toBe('rate_limited')
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await t.client.post('/auth/registrate', { username: 'limited_two', password: 'password-123' })).status).toBe(429)
    expect((await t.client.get('/health')).status).toBe(200)
  })
})
