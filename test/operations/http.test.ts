import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, expectEnvelope, STORE, startTestServer, type TestApp } from '../support/harness'

afterAll(closeTestResources)

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})

describe(`HTTP conventions on ${STORE}`, () => {
  test('unknown routes, bad JSON, wrong content type and bad ids answer in the envelope, never 5xx', async () => {
    const cases = [
      [await t.client.get('/no/such/route'), 404, 'not_found'],
      [await t.client.post('/auth/login', '{"username": "x",'), 400, 'bad_request'],
      [await t.client.call('POST', '/auth/login', { body: 'username=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type'],
      [await t.client.call('POST', '/auth/login', { body: '{}', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type'],
      [await t.client.post('/auth/login', '[]'), 422, 'validation_error'],
      [await t.client.post('/auth/login', 'null'), 422, 'validation_error'],
      [await t.client.post('/auth/login'), 422, 'validation_error'],
    ] as const
    for (const [reply, status, code] of cases) {
      expect(reply.status).toBe(status)
      expect(expectEnvelope(reply)).toBe(code)
      expect(JSON.stringify(reply.body)).not.toMatch(/at .*\.ts|node_modules|SELECT|stack/i)
    }
  })

  test('application/json with a charset is accepted', async () => {
    await t.client.register('charset_user')
    for (const contentType of ['application/json; charset=utf-8', 'Application/JSON']) {
      const reply = await t.client.call('POST', '/auth/login', { body: { username: 'charset_user', password: 'password-123' }, headers: { 'content-type': contentType } })
      expect(reply.status).toBe(200)
    }
  })

  test('API answers carry the security headers; the Swagger page has a policy of its own', async () => {
    const user = await t.client.register('header_user')
    for (const reply of [await t.client.get('/auth/me', user.access), await t.client.get('/auth/me'), await t.client.get('/nowhere')]) {
      expect(reply.headers.get('x-content-type-options')).toBe('nosniff')
      expect(reply.headers.get('x-frame-options')).toBe('DENY')
      expect(reply.headers.get('content-security-policy')).toBe("frame-ancestors 'none'")
      expect(reply.headers.get('cache-control')).toBe('no-store')
      expect(reply.headers.get('content-type')).toStartWith('application/json')
    }
    // The Swagger page has a policy of its own: its files from the service only, never framed.
    const page = await t.client.get('/swagger')
    expect(page.headers.get('x-content-type-options')).toBe('nosniff')
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self';")
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
  })

  test('CORS answers only the configured origins, never a wildcard for them', async () => {
    const cors = await createTestApp({ CORS_ORIGINS: 'https://game.example, https://ops.example' })
    const preflight = await cors.client.call('OPTIONS', '/auth/login', {
      headers: { origin: 'https://game.example', 'access-control-request-method': 'POST' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://game.example')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization')
    expect(preflight.headers.get('vary')).toBe('Origin')
    const stranger = await cors.client.call('GET', '/health', { headers: { origin: 'https://evil.example' } })
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull()
    expect((await t.client.call('GET', '/health', { headers: { origin: 'https://game.example' } })).headers.get('access-control-allow-origin')).toBeNull()
  })

  test('API_PREFIX mounts the API under a prefix; probes and docs stay at the root', async () => {
    const prefixed = await createTestApp({ API_PREFIX: '/api/v1' })
    expect((await prefixed.client.post('/api/v1/auth/login', { username: 'root_admin', password: 'root-admin-password' })).status).toBe(200)
    expect((await prefixed.client.post('/auth/login', { username: 'root_admin', password: 'root-admin-password' })).status).toBe(404)
    expect((await prefixed.client.get('/health')).status).toBe(200)
    const doc = (await prefixed.client.get('/swagger/json')).body
    expect(Object.keys(doc.paths)).toContain('/api/v1/users/{user_id}')
  })

  test('health answers; ready checks the database', async () => {
    const health = await t.client.get('/health')
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ status: 'ok', version: expect.any(String) })
    expect((await t.client.get('/ready')).body.status).toBe('ready')
    const closing = await createTestApp()
    await closing.context.db.close()
    const down = await closing.client.get('/ready')
    expect(down.status).toBe(503)
    expect(expectEnvelope(down)).toBe('unavailable')
  })
})

describe(`on a real listener on ${STORE}`, () => {
  test('an oversize body is 413 in the envelope, declared or not, and the service keeps serving', async () => {
    const server = await startTestServer({ MAX_BODY_BYTES: '2048' })
    const huge = JSON.stringify({ username: 'big_body', password: 'x'.repeat(4096) })
    const declared = await server.client.post('/auth/registrate', huge)
    expect(declared.status).toBe(413)
    expect(expectEnvelope(declared)).toBe('payload_too_large')
    const chunked = await fetch(`${server.baseUrl}/auth/registrate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(huge))
          controller.close()
        },
      }),
    })
    expect(chunked.status).toBe(413)
    expect((await server.client.get('/health')).status).toBe(200)
  })
})
