import { afterAll, describe, expect, test } from 'bun:test'
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/plugins/security'
import { closeTestResources, expectEnvelope, STORE, startTestServer } from '../support/harness'
import { healthLatencies, slowUpload } from '../support/attack'

afterAll(closeTestResources)

const nested = (depth: number, inner = '') => '['.repeat(depth) + inner + ']'.repeat(depth)

describe('the nesting check', () => {
  test('counts arrays and objects, not brackets inside strings or escaped quotes', () => {
    expect(nestsDeeperThan(nested(32), 32)).toBe(false)
    expect(nestsDeeperThan(nested(33), 32)).toBe(true)
    expect(nestsDeeperThan(`{"a":${nested(31)}}`, 32)).toBe(false)
    expect(nestsDeeperThan(`{"a":${nested(32)}}`, 32)).toBe(true)
    expect(nestsDeeperThan(JSON.stringify({ text: '['.repeat(100) }), 32)).toBe(false)
    expect(nestsDeeperThan(JSON.stringify({ text: `\\"${'{'.repeat(100)}` }), 32)).toBe(false)
    expect(nestsDeeperThan(`["\\\\",${nested(40)}]`, 32)).toBe(true)
  })
})

describe(`hostile bodies on a real listener on ${STORE} (SECURITY 22, 26)`, () => {
  test('a deeply nested body is refused with 400 before it is parsed, at the top level or inside a field', async () => {
    const server = await startTestServer()
    const deep = await server.client.post('/auth/login', nested(30_000))
    expect(deep.status).toBe(400)
    expect(expectEnvelope(deep)).toBe('bad_request')
    expect(deep.body.message).toContain(`${MAX_JSON_DEPTH} levels`)
    const inField = await server.client.post('/auth/login', `{"username":${nested(5000, '1')},"password":"password-123"}`)
    expect(inField.status).toBe(400)
    // At the limit it is parsed and validated like any other wrong body.
    const atLimit = await server.client.post('/auth/login', `{"username":${nested(MAX_JSON_DEPTH - 1)},"password":"password-123"}`)
    expect(atLimit.status).toBe(422)
  })

  test('validation errors never echo the rejected value', async () => {
    const server = await startTestServer()
    const marker = 'ECHO-MARKER'
    const replies = [
      await server.client.post('/auth/login', { username: { nested: marker.repeat(100) }, password: 'password-123' }),
      await server.client.post('/auth/login', { username: [marker, marker], password: 'password-123' }),
      await server.client.post('/auth/registrate', { username: `${marker}!`, password: 'password-123' }),
      await server.client.post('/auth/login', { username: 'someone', password: 'password-123', extra_field: marker }),
    ]
    for (const reply of replies) {
      expect(reply.status).toBe(422)
      expect(JSON.stringify(reply.body)).not.toContain(marker)
    }
  })

  test('/health stays fast while worst-case bodies arrive on several connections', async () => {
    const server = await startTestServer()
    const attack = Promise.all(
      Array.from({ length: 12 }, (_, i) => server.client.post('/auth/login', i % 2 ? nested(30_000) : `{"a":${nested(30_000)}}`)),
    )
    const latencies = await healthLatencies(server.baseUrl, attack)
    expect((await attack).map((reply) => reply.status)).toEqual(Array(12).fill(400))
    // Before the fix one such body blocked the event loop for seconds.
    expect(Math.max(...latencies)).toBeLessThan(500)
  })

  test('a body trickled a byte at a time gets 408 at BODY_TIMEOUT, and the service keeps serving', async () => {
    const server = await startTestServer({ BODY_TIMEOUT: '1' })
    const started = performance.now()
    const uploads = await Promise.all(Array.from({ length: 20 }, () => slowUpload(server.baseUrl, '/auth/login', 100, 200)))
    const elapsed = performance.now() - started
    for (const answer of uploads) {
      expect(answer).toStartWith('HTTP/1.1 408')
      expect(answer).toContain('"error":"request_timeout"')
    }
    expect(elapsed).toBeLessThan(5000)
    expect((await server.client.get('/health')).status).toBe(200)
  }, 15_000)

  test('a route that takes no body never reads one: a caller without a token gets its 401 whatever it sent', async () => {
    const server = await startTestServer()
    const anonymous = [
      await server.client.post('/auth/logout', nested(30_000)),
      await server.client.call('POST', '/auth/logout', { body: 'plain text', headers: { 'content-type': 'text/plain' } }),
      await server.client.post('/rooms/my', '{"broken":'),
    ]
    expect(anonymous.map((reply) => reply.status)).toEqual([401, 401, 401])
    const user = await server.client.register('bodiless_user')
    expect((await server.client.call('POST', '/auth/logout', { token: user.access, body: nested(5000) })).status).toBe(200)
  })

  test('no more than MAX_CONCURRENT_BODIES are read at once: the rest get 503 with Retry-After at once', async () => {
    const server = await startTestServer({ MAX_CONCURRENT_BODIES: '5', BODY_TIMEOUT: '1' })
    const answers = await Promise.all(Array.from({ length: 20 }, () => slowUpload(server.baseUrl, '/auth/login', 100, 200)))
    const statuses = answers.map((answer) => answer.slice(9, 12))
    expect(statuses.filter((status) => status === '408')).toHaveLength(5)
    expect(statuses.filter((status) => status === '503')).toHaveLength(15)
    expect(answers.find((answer) => answer.startsWith('HTTP/1.1 503'))).toMatch(/retry-after: 1/i)
    expect((await server.client.post('/auth/login', { username: 'root_admin', password: 'root-admin-password' })).status).toBe(200)
  }, 15_000)

  test('a body past four times MAX_BODY_BYTES is cut off by Bun itself before any of our code runs', async () => {
    const server = await startTestServer({ MAX_BODY_BYTES: '2048' })
    const response = await fetch(`${server.baseUrl}/auth/login`, { method: 'POST', body: 'x'.repeat(4 * 2048 + 1) })
    expect(response.status).toBe(413)
  })
})
