import { afterAll, afterEach, describe, expect, setSystemTime, test } from 'bun:test'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import { type Client, closeTestResources, createTestApp, freshDatabaseUrl, onlyOn, refusal, STORE, startTestServer, TEST_ENV } from '../support/harness'
import { type ServiceProcess, startService } from '../support/process'
import { follower } from '../support/realtime'
import { type SealedTokens, unseal } from '../../client/src/sealed'
import { sha256 } from '../../src/lib/crypto'

// Logging a desktop in with a phone (issue 22): the desktop proves it holds the key it started with,
// the phone sees where the request comes from and decides, and exactly one session comes of it.

const running: ServiceProcess[] = []
afterAll(async () => {
  for (const service of running) service.child.kill('SIGKILL')
  await Promise.all(running.map((service) => service.child.exited))
  await closeTestResources()
})
afterEach(() => setSystemTime())

const CHROME_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

/** A desktop's two keys, as the lobby makes them: one signs, the other opens what the exchange answers. */
async function signer() {
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  const sealing = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits'])) as CryptoKeyPair
  // As a browser exports them, key_ops and ext included.
  const publicJwk = async (key: CryptoKey) => {
    const { kty, crv, x, y, key_ops, ext } = await crypto.subtle.exportKey('jwk', key)
    return { kty, crv, x, y, key_ops, ext }
  }
  return {
    publicKey: await publicJwk(keys.publicKey),
    encryptionKey: await publicJwk(sealing.publicKey),
    sealing,
    sign: async (text: string) => Buffer.from(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, new TextEncoder().encode(text))).toString('base64url'),
  }
}

/**
 * A desktop that started a request: what it was given, and its exchange (signed with its own key unless
 * told otherwise), whose answer it opens: `body` is the TokenResponse, `sealed` what came over the wire.
 */
async function desktop(client: Client, userAgent = CHROME_ON_WINDOWS) {
  const key = await signer()
  const reply = await client.call('POST', '/auth/qr', { body: { public_key: key.publicKey, encryption_key: key.encryptionKey }, headers: { 'user-agent': userAgent } })
  expect(reply.status).toBe(201)
  const started = reply.body as { request_id: string; code: string; link: string; qr_svg: string; verification_words: string[]; expires_in: number; interval: number }
  return {
    ...started,
    sealing: key.sealing,
    exchange: async (signature?: string) => {
      const answer = await client.post('/auth/qr/token', { request_id: started.request_id, signature: signature ?? (await key.sign(`qr-login:${started.request_id}`)) })
      if (answer.status !== 200) return { ...answer, sealed: undefined }
      return { ...answer, sealed: answer.body as SealedTokens, body: await unseal<any>(answer.body, key.sealing, started.request_id) }
    },
  }
}

describe(`QR login on ${STORE}`, () => {
  test('a phone logs a desktop in: it sees where the request comes from, the waiting desktop gets a session of the phone’s user at once, and the user’s other devices hear of it', async () => {
    const server = await startTestServer()
    const phone = await server.client.register('qr_alice')
    const otherDevice = await follower(server.baseUrl, phone.access)
    const pc = await desktop(server.client)
    expect(pc.qr_svg).toStartWith('<svg')
    expect(pc.link).toBe(`${server.baseUrl}/lobby#qr-login=${pc.code}`)
    expect(pc.verification_words).toHaveLength(4)
    expect(pc).toMatchObject({ expires_in: 120, interval: 5 })

    // The desktop waits (up to QR_LOGIN_WAIT, 20 s) while the phone looks and decides.
    const asked = Date.now()
    const exchanged = pc.exchange()
    const shown = await server.client.post('/auth/qr/inspect', { code: pc.code }, phone.access)
    expect(shown.status).toBe(200)
    expect(shown.body).toMatchObject({ device: 'Chrome 131 on Windows', user_agent: CHROME_ON_WINDOWS, address: '127.0.0.1', verification_words: pc.verification_words })
    // When it was asked for, so that a request from long ago stands out.
    expect(Math.abs(Date.parse(shown.body.created_at) - asked)).toBeLessThan(5000)
    expect((await server.client.post('/auth/qr/approve', { code: pc.code }, phone.access)).status).toBe(200)
    const answer = await exchanged
    expect(answer.status).toBe(200)
    expect(Date.now() - asked).toBeLessThan(5000)
    expect(answer.body.user).toMatchObject({ user_id: phone.userId, username: 'qr_alice' })
    // Sealed to the desktop's own key: no token in what went over the wire, and another key opens nothing.
    expect(answer.sealed).toMatchObject({ alg: 'ECDH-ES+HKDF-SHA256+A256GCM', epk: { kty: 'EC', crv: 'P-256' } })
    expect(JSON.stringify(answer.sealed)).not.toContain(answer.body.access_token.token)
    expect(JSON.stringify(answer.sealed)).not.toContain(answer.body.refresh_token.token)
    const stranger = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits'])) as CryptoKeyPair
    await expect(unseal(answer.sealed!, stranger, pc.request_id)).rejects.toThrow()
    // Bound to its request: opened as another request's answer, it fails its authentication.
    await expect(unseal(answer.sealed!, pc.sealing, crypto.randomUUID())).rejects.toThrow()
    // The code is kept only as its hash: a copy of the database approves nothing.
    const kept = JSON.stringify(await server.context.db.all('SELECT * FROM login_requests'))
    expect(kept).not.toContain(pc.code)
    expect(kept).toContain(sha256(pc.code))
    expect((await server.client.get('/auth/me', answer.body.access_token.token)).body.user_id).toBe(phone.userId)
    // A session of its own: the phone's goes on, and the desktop's refresh token works.
    expect((await server.client.post('/auth/refresh', { refresh_token: answer.body.refresh_token.token })).status).toBe(200)
    expect((await server.client.get('/auth/me', phone.access)).status).toBe(200)

    const told = await otherDevice.until(() => otherDevice.events(otherDevice.userStream).find((frame) => frame.event.type === 'device_logged_in'))
    expect(told.event).toEqual({ type: 'device_logged_in', session_id: expect.any(String), address: '127.0.0.1', device: 'Chrome 131 on Windows' })
    // As the realtime protocol's document describes the frame.
    const protocol: any = await (await fetch(`${server.baseUrl}/asyncapi/json`)).json()
    const ajv = new Ajv({ strict: false })
    addFormats(ajv)
    const eventFrame = ajv.compile(protocol.components.messages['server.event'].payload)
    expect({ valid: eventFrame(told), errors: eventFrame.errors }).toEqual({ valid: true, errors: null })
    expect(eventFrame({ ...told, event: { ...told.event, device: 42 } })).toBe(false)
    otherDevice.close()

    // Single use, and nothing left to look at.
    expect(refusal(await pc.exchange())).toEqual({ status: 400, error: 'expired_token' })
    expect(refusal(await server.client.post('/auth/qr/inspect', { code: pc.code }, phone.access))).toEqual({ status: 404, error: 'not_found' })
  }, 20_000)

  test('refusals: another key’s signature, a denied request, one left undecided, polls too close together, expiry, and keys that are not P-256 points', async () => {
    const app = await createTestApp({ QR_LOGIN_WAIT: '0', QR_LOGIN_TTL: '60' })
    const phone = await app.client.register('qr_bob')

    const pc = await desktop(app.client)
    const stranger = await signer()
    expect(refusal(await pc.exchange(await stranger.sign(`qr-login:${pc.request_id}`)))).toEqual({ status: 401, error: 'invalid_proof' })
    const own = await signer()
    expect(refusal(await pc.exchange(await own.sign('qr-login:another-request')))).toEqual({ status: 401, error: 'invalid_proof' })
    // Undecided: pending at once (no wait here), then slow_down until QR_LOGIN_INTERVAL has passed.
    expect(refusal(await pc.exchange())).toEqual({ status: 400, error: 'authorization_pending' })
    const tooSoon = await pc.exchange()
    expect(refusal(tooSoon)).toEqual({ status: 400, error: 'slow_down' })
    expect(tooSoon.headers.get('retry-after')).toBe('5')
    setSystemTime(new Date(Date.now() + 6_000))
    expect(refusal(await pc.exchange())).toEqual({ status: 400, error: 'authorization_pending' })

    expect((await app.client.post('/auth/qr/deny', { code: pc.code }, phone.access)).status).toBe(200)
    expect(refusal(await pc.exchange())).toEqual({ status: 400, error: 'access_denied' })
    expect(refusal(await app.client.post('/auth/qr/approve', { code: pc.code }, phone.access))).toEqual({ status: 404, error: 'not_found' })

    const late = await desktop(app.client)
    setSystemTime(new Date(Date.now() + 61_000))
    expect(refusal(await app.client.post('/auth/qr/approve', { code: late.code }, phone.access))).toEqual({ status: 404, error: 'not_found' })
    expect(refusal(await late.exchange())).toEqual({ status: 400, error: 'expired_token' })
    setSystemTime()

    // Approved by a session that then logged out: the approval went with it.
    const phoneAgain = await app.client.login('qr_bob', 'password-123')
    const loggedOut = await desktop(app.client)
    expect((await app.client.post('/auth/qr/approve', { code: loggedOut.code }, phoneAgain.access)).status).toBe(200)
    expect((await app.client.post('/auth/logout', undefined, phoneAgain.access)).status).toBe(200)
    expect(refusal(await loggedOut.exchange())).toEqual({ status: 400, error: 'access_denied' })

    // Approved, then the approving account deactivated before the exchange: no session.
    const admin = await app.client.loginAdmin()
    const revoked = await desktop(app.client)
    expect((await app.client.post('/auth/qr/approve', { code: revoked.code }, phone.access)).status).toBe(200)
    expect((await app.client.put(`/users/${phone.userId}`, { is_active: false }, admin.access)).status).toBe(200)
    expect(refusal(await revoked.exchange())).toEqual({ status: 400, error: 'access_denied' })

    const key = await signer()
    for (const public_key of [
      { ...key.publicKey, y: key.publicKey.x },
      { ...key.publicKey, crv: 'P-384' },
      { kty: 'RSA', n: 'AQAB', e: 'AQAB' },
      { ...key.publicKey, x: `${key.publicKey.x}A` },
    ])
      for (const body of [{ public_key, encryption_key: key.encryptionKey }, { public_key: key.publicKey, encryption_key: public_key }])
        expect(refusal(await app.client.post('/auth/qr', body))).toEqual({ status: 422, error: 'validation_error' })
    expect(refusal(await app.client.post('/auth/qr', { public_key: key.publicKey }))).toEqual({ status: 422, error: 'validation_error' })
    expect(refusal(await app.client.post('/auth/qr/token', { request_id: crypto.randomUUID(), signature: 'A'.repeat(86) }))).toEqual({ status: 400, error: 'expired_token' })
    expect(refusal(await app.client.post('/auth/qr/inspect', { code: pc.code }))).toEqual({ status: 401, error: 'unauthorized' })
  })

  test('requests are forgotten a minute after they expire, in batches; a live one is kept', async () => {
    const app = await createTestApp({ QR_LOGIN_TTL: '60' })
    const old = await Promise.all(Array.from({ length: 5 }, () => desktop(app.client)))
    const count = async () => (await app.context.db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM login_requests'))?.total
    // Kept until a minute past their expiry (60 s): not at 90 s from now, gone at 140 s.
    expect(await app.context.credentials.qr.purgeExpired(Date.now() + 90_000)).toBe(0)
    setSystemTime(new Date(Date.now() + 90_000))
    const live = await desktop(app.client)
    expect(await app.context.credentials.qr.purgeExpired(Date.now() + 50_000, 2)).toBe(old.length)
    expect(await count()).toBe(1)
    expect((await app.client.post('/auth/qr/inspect', { code: live.code }, (await app.client.register('qr_purge')).access)).status).toBe(200)
  })

  test('a request started before its tokens were sealed (no encryption key) cannot be approved nor exchanged: the desktop starts again', async () => {
    const app = await createTestApp()
    const key = await signer()
    const requestId = crypto.randomUUID()
    await app.context.db.run(
      `INSERT INTO login_requests (request_id, code_hash, public_key, address, user_agent, status, created_at, expires_at) VALUES ($1, $2, $3, '127.0.0.1', 'old', 'pending', $4, $5)`,
      [requestId, sha256('legacy-code'), JSON.stringify(key.publicKey), new Date().toISOString(), new Date(Date.now() + 60_000).toISOString()],
    )
    const phone = await app.client.register('qr_legacy')
    expect(refusal(await app.client.post('/auth/qr/inspect', { code: 'legacy-code' }, phone.access))).toEqual({ status: 404, error: 'not_found' })
    expect(refusal(await app.client.post('/auth/qr/approve', { code: 'legacy-code' }, phone.access))).toEqual({ status: 404, error: 'not_found' })
    const signature = await key.sign(`qr-login:${requestId}`)
    expect(refusal(await app.client.post('/auth/qr/token', { request_id: requestId, signature }))).toEqual({ status: 400, error: 'expired_token' })
  })

  test('20 concurrent exchanges of one approved request: exactly one session', async () => {
    const app = await createTestApp()
    const phone = await app.client.register('qr_carol')
    const pc = await desktop(app.client)
    expect((await app.client.post('/auth/qr/approve', { code: pc.code }, phone.access)).status).toBe(200)
    const answers = await Promise.all(Array.from({ length: 20 }, () => pc.exchange()))
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1)
    expect(answers.filter((answer) => answer.status !== 200).map(refusal)).toEqual(Array(19).fill({ status: 400, error: 'expired_token' }))
  })

  test('bursts of 40: QR_LOGIN_RATE_LIMIT starts per address, QR_APPROVAL_RATE_LIMIT looks and decisions per user', async () => {
    const app = await createTestApp({ QR_LOGIN_RATE_LIMIT: '10', QR_APPROVAL_RATE_LIMIT: '20' })
    const key = await signer()
    const starts = await Promise.all(Array.from({ length: 40 }, () => app.client.post('/auth/qr', { public_key: key.publicKey, encryption_key: key.encryptionKey })))
    expect(starts.filter((reply) => reply.status === 201)).toHaveLength(10)
    expect(starts.filter((reply) => reply.status !== 201).map(refusal)).toEqual(Array(30).fill({ status: 429, error: 'rate_limited' }))
    const phone = await app.client.register('qr_dave')
    const code = starts.find((reply) => reply.status === 201)!.body.code
    const looks = await Promise.all(Array.from({ length: 40 }, () => app.client.post('/auth/qr/inspect', { code }, phone.access)))
    expect(looks.filter((reply) => reply.status === 200)).toHaveLength(20)
    expect(looks.filter((reply) => reply.status !== 200).map(refusal)).toEqual(Array(20).fill({ status: 429, error: 'rate_limited' }))
  })
})

describe.if(onlyOn('postgres', 'a QR login approved on one instance wakes the desktop waiting on another'))('QR login across PostgreSQL instances', () => {
  test('approved on instance A, the desktop waiting on instance B has its session at once', async () => {
    const shared = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: await freshDatabaseUrl() }
    const [a, b] = await Promise.all([startService(shared), startService(shared)])
    running.push(a!, b!)
    const phone = await a!.client.register('qr_erin')
    const pc = await desktop(b!.client)
    const asked = Date.now()
    const exchanged = pc.exchange()
    await Bun.sleep(300)
    expect((await a!.client.post('/auth/qr/approve', { code: pc.code }, phone.access)).status).toBe(200)
    const answer = await exchanged
    expect(answer.status).toBe(200)
    expect(answer.body.user.user_id).toBe(phone.userId)
    // Woken by the decision's commit, not by the end of QR_LOGIN_WAIT (20 s).
    expect(Date.now() - asked).toBeLessThan(3000)
  }, 30_000)
})
