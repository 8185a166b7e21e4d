import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, type Session, startTestServer, STORE, TEST_ENV, type TestApp } from '../support/harness'
import { AccessTokenVerifier, hmacSignatureCheck } from '../../src/modules/sessions/tokens'
import { craftJwt, decodePayload } from '../support/jwt'
import { EXAMPLE_P256_KEY } from '../../src/modules/credentials/model'

afterAll(closeTestResources)

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})

const HS256 = { alg: 'HS256', typ: 'JWT' }

describe(`access tokens on ${STORE} (SECURITY 1-3)`, () => {
  test('a hand-made token with the right key, claims and algorithm is accepted (control)', async () => {
    const user = await t.client.register('control_user')
    const claims = decodePayload(user.access)
    expect(claims).toMatchObject({ iss: 'sim-gateway', aud: 'sim-gateway', sub: user.userId })
    expect(claims.sid).toBeString()
    expect(claims.jti).toBeString()
    expect(Number(claims.exp) - Number(claims.iat)).toBe(900)
    const token = craftJwt(HS256, { ...claims, jti: crypto.randomUUID() }, TEST_ENV.JWT_SECRET)
    expect((await t.client.get('/auth/me', token)).status).toBe(200)
  })

  test('forty requests bringing one new token at once share one signature check, and all pass', async () => {
    const user = await t.client.register('crowd_user')
    const token = craftJwt(HS256, { ...decodePayload(user.access), jti: crypto.randomUUID() }, TEST_ENV.JWT_SECRET)
    const config = { ...t.config.jwt, secret: t.context.jwtSecret }
    const signatureOf = hmacSignatureCheck(config)
    let checks = 0
    const verifier = new AccessTokenVerifier(config, (token) => (checks++, signatureOf(token)))
    const answers = await Promise.all(Array.from({ length: 40 }, () => verifier.verify(token)))
    expect(answers.every((claims) => claims?.sub === user.userId)).toBe(true)
    expect(checks).toBe(1)
    expect(await verifier.verify(`${token}x`)).toBeUndefined()
    expect(checks).toBe(2)
  })

  test('alg none, a wrong key, a changed payload and another algorithm are all 401', async () => {
    const user = await t.client.register('forged_user')
    const admin = await t.client.loginAdmin()
    const claims = decodePayload(user.access)
    const [header, , signature] = user.access.split('.')
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: admin.userId, sid: decodePayload(admin.access).sid })).toString('base64url')}.${signature}`
    const forgeries = {
      none: craftJwt({ alg: 'none', typ: 'JWT' }, claims),
      noneWithSignature: `${craftJwt({ alg: 'none', typ: 'JWT' }, claims)}${signature}`,
      wrongKey: craftJwt(HS256, claims, 'another-secret-that-is-long-enough-too!!'),
      tampered,
      hs512SameSecret: craftJwt({ alg: 'HS512', typ: 'JWT' }, claims, TEST_ENV.JWT_SECRET, 'sha512'),
      criticalExtension: craftJwt({ ...HS256, crit: ['exp'] }, claims, TEST_ENV.JWT_SECRET),
      signatureNotCanonical: `${user.access}=`,
      fourParts: `${user.access}.e30`,
      garbage: 'not.a.jwt',
    }
    for (const [name, token] of Object.entries(forgeries)) {
      const reply = await t.client.get('/auth/me', token)
      expect({ name, status: reply.status, error: reply.body.error }).toEqual({ name, status: 401, error: 'unauthorized' })
    }
  })

  test('a QR login started with a P-256 point off the curve (422) leaves the next token check working', async () => {
    const user = await t.client.register('curve_user')
    const offTheCurve = { ...EXAMPLE_P256_KEY, y: `${EXAMPLE_P256_KEY.y.slice(0, -2)}AA` }
    expect((await t.client.post('/auth/qr', { public_key: offTheCurve, encryption_key: EXAMPLE_P256_KEY })).status).toBe(422)
    // Bun left the failed import's OpenSSL error queued for the next keyed hash, which is this check's HMAC.
    expect((await t.client.get('/auth/me', user.access)).status).toBe(200)
  })

  test('a token issued a little ahead of this clock, by another instance, is accepted', async () => {
    const user = await t.client.register('skewed_user')
    const claims = decodePayload(user.access)
    const now = Math.floor(Date.now() / 1000)
    const token = craftJwt(HS256, { ...claims, jti: crypto.randomUUID(), iat: now + 30 }, TEST_ENV.JWT_SECRET)
    expect((await t.client.get('/auth/me', token)).status).toBe(200)
  })

  test('expired, issued in the future, wrong issuer, wrong audience and missing claims are 401', async () => {
    const user = await t.client.register('claims_user')
    const claims = decodePayload(user.access)
    const now = Math.floor(Date.now() / 1000)
    const { sid: _sid, ...withoutSid } = claims
    const { exp: _exp, ...withoutExp } = claims
    const { iat: _iat, ...withoutIssuedAt } = claims
    const variants = {
      expired: { ...claims, iat: now - 1000, exp: now - 10 },
      issuedAYearAhead: { ...claims, iat: now + 31_536_000, exp: now + 31_536_900 },
      issuedTwoMinutesAhead: { ...claims, iat: now + 120 },
      noIssuedAt: withoutIssuedAt,
      wrongIssuer: { ...claims, iss: 'someone-else' },
      wrongAudience: { ...claims, aud: 'another-service' },
      noSessionId: withoutSid,
      noExpiry: withoutExp,
      otherUsersSession: { ...claims, sub: crypto.randomUUID() },
      notBeforeAMinuteAhead: { ...claims, nbf: now + 60 },
      audienceNotListed: { ...claims, aud: ['another-service'] },
    }
    for (const [name, payload] of Object.entries(variants)) {
      const reply = await t.client.get('/auth/me', craftJwt(HS256, payload, TEST_ENV.JWT_SECRET))
      expect({ name, status: reply.status }).toEqual({ name, status: 401 })
    }
    // The audience may be a list that names this service.
    expect((await t.client.get('/auth/me', craftJwt(HS256, { ...claims, aud: ['another-service', 'sim-gateway'] }, TEST_ENV.JWT_SECRET))).status).toBe(200)
  })

  test('every 401 for a bearer token carries the RFC 6750 challenge, with error="invalid_token" when one was sent', async () => {
    const user = await t.client.register('challenged_user')
    const none = await t.client.get('/auth/me')
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="sim-gateway"')
    for (const token of ['garbage.token.here', user.refresh]) {
      const refused = await t.client.get('/auth/me', token)
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="sim-gateway", error="invalid_token"')
    }
    await t.client.post('/auth/logout', undefined, user.access)
    expect((await t.client.get('/rooms/my', user.access)).headers.get('www-authenticate')).toBe('Bearer realm="sim-gateway", error="invalid_token"')
    // A wrong password is not a bearer token problem.
    expect((await t.client.post('/auth/login', { username: 'challenged_user', password: 'wrong-password' })).headers.get('www-authenticate')).toBeNull()
  })

  test('a Bearer header with no token, or another scheme, is 401', async () => {
    const user = await t.client.register('scheme_user')
    for (const authorization of ['Bearer', 'Bearer ', `Basic ${user.access}`, user.access, `Bearer${user.access}`]) {
      const reply = await t.client.call('GET', '/auth/me', { headers: { authorization } })
      expect(reply.status).toBe(401)
    }
    // The scheme is case-insensitive (RFC 7235).
    expect((await t.client.call('GET', '/auth/me', { headers: { authorization: `bearer ${user.access}` } })).status).toBe(200)
  })

  test('a token in the query string is not accepted: only the Authorization header counts', async () => {
    const user = await t.client.register('query_token_user')
    expect((await t.client.get(`/auth/me?access_token=${user.access}`)).status).toBe(401)
    expect((await t.client.get(`/rooms/my?access_token=${user.access}`)).status).toBe(401)
  })
})

describe(`refresh tokens on ${STORE} (SECURITY 2, 4, 5, 6)`, () => {
  test('a refresh token is never a bearer token, and an access token never refreshes', async () => {
    const user = await t.client.register('confused_user')
    expect((await t.client.get('/auth/me', user.refresh)).status).toBe(401)
    const reply = await t.client.post('/auth/refresh', { refresh_token: user.access })
    expect(reply.status).toBe(401)
    expect(reply.body.error).toBe('invalid_refresh_token')
  })

  test('replaying a rotated refresh token revokes the whole session, and the revocation is committed', async () => {
    const user = await t.client.register('rotating_user')
    const tokens = [{ access: user.access, refresh: user.refresh }]
    for (let round = 0; round < 3; round++) {
      const reply = await t.client.post('/auth/refresh', { refresh_token: tokens.at(-1)?.refresh })
      expect(reply.status).toBe(200)
      tokens.push({ access: reply.body.access_token.token, refresh: reply.body.refresh_token.token })
    }
    const newest = tokens.at(-1)!
    expect((await t.client.get('/auth/me', newest.access)).status).toBe(200)

    const replay = await t.client.post('/auth/refresh', { refresh_token: tokens[0]!.refresh })
    expect(replay.status).toBe(401)
    expect(replay.body.error).toBe('refresh_token_reused')

    expect((await t.client.get('/auth/me', newest.access)).status).toBe(401)
    expect((await t.client.post('/auth/refresh', { refresh_token: newest.refresh })).status).toBe(401)
    const session = await t.context.db.get<{ revoked_at: string | null; revoked_reason: string }>(
      'SELECT revoked_at, revoked_reason FROM sessions WHERE session_id = $1',
      [String(decodePayload(newest.access).sid)],
    )
    expect(session?.revoked_at).toBeString()
    expect(session?.revoked_reason).toBe('refresh_token_reused')
  })

  test('ten concurrent refreshes with one token: exactly one wins', async () => {
    const server = await startTestServer()
    const user = await server.client.register('racing_user')
    const replies = await Promise.all(Array.from({ length: 10 }, () => server.client.post('/auth/refresh', { refresh_token: user.refresh })))
    const statuses = replies.map((reply) => reply.status)
    expect(statuses.filter((status) => status === 200)).toHaveLength(1)
    expect(statuses.filter((status) => status === 401)).toHaveLength(9)
  })

  test('an expired refresh token is refused', async () => {
    const user = await t.client.register('expired_refresh')
    await t.context.db.run("UPDATE refresh_tokens SET expires_at = '2000-01-01T00:00:00.000Z' WHERE session_id = $1", [String(decodePayload(user.access).sid)])
    const reply = await t.client.post('/auth/refresh', { refresh_token: user.refresh })
    expect(reply.status).toBe(401)
    expect(reply.body.error).toBe('invalid_refresh_token')
  })

  test('refreshing never outlives SESSION_MAX_LIFETIME: the refresh token says so, and the session ends on time', async () => {
    const short = await createTestApp({ SESSION_MAX_LIFETIME: '3600' })
    const login = await short.client.post('/auth/registrate', { username: 'mortal_user', password: 'password-123' })
    expect(login.body.refresh_token.expires_in).toBe(3600)
    const refreshed = await short.client.post('/auth/refresh', { refresh_token: login.body.refresh_token })
    expect(refreshed.status).toBe(200)
    expect(refreshed.body.refresh_token.expires_in).toBeLessThanOrEqual(3600)
    expect(refreshed.body.refresh_token.expires_in).toBeGreaterThan(3590)
    // The session began an hour ago: however fresh its refresh token, it is over.
    await short.context.db.run('UPDATE sessions SET created_at = $1', [new Date(Date.now() - 3_601_000).toISOString()])
    const late = await short.client.post('/auth/refresh', { refresh_token: refreshed.body.refresh_token.token })
    expect(late.status).toBe(401)
    expect(late.body.error).toBe('invalid_refresh_token')
    // With the default lifetime, the refresh token lives REFRESH_TOKEN_TTL.
    expect((await t.client.post('/auth/registrate', { username: 'long_lived', password: 'password-123' })).body.refresh_token.expires_in).toBe(2_592_000)
  })
})

describe(`sessions per user on ${STORE}`, () => {
  test('a login past MAX_SESSIONS_PER_USER ends the oldest sessions, whose tokens stop working at once', async () => {
    const capped = await createTestApp({ MAX_SESSIONS_PER_USER: '3' })
    await capped.client.register('many_devices')
    const logins: Session[] = []
    for (let i = 0; i < 5; i++) logins.push(await capped.client.login('many_devices', 'password-123'))
    const alive = async (session: (typeof logins)[number]) => (await capped.client.get('/auth/me', session.access)).status === 200
    expect(await Promise.all(logins.map(alive))).toEqual([false, false, true, true, true])
    // The registration's session went first, then the first login's; refresh tokens die with them.
    expect((await capped.client.post('/auth/refresh', { refresh_token: logins[0]!.refresh })).status).toBe(401)
    const reasons = await capped.context.db.all<{ revoked_reason: string | null }>(
      'SELECT revoked_reason FROM sessions s JOIN users u ON u.user_id = s.user_id WHERE u.username = $1 ORDER BY s.created_at',
      ['many_devices'],
    )
    expect(reasons.map((row) => row.revoked_reason)).toEqual(['too_many_sessions', 'too_many_sessions', 'too_many_sessions', null, null, null])
  })
})

describe(`account changes bite on the next request on ${STORE} (SECURITY 8)`, () => {
  test('deactivation refuses the access and refresh tokens at once; activation lets the user log in again', async () => {
    const admin = await t.client.loginAdmin()
    const user = await t.client.register('deactivated_user')
    await t.client.post(`/users/${user.userId}/deactivate`, undefined, admin.access)
    expect((await t.client.get('/auth/me', user.access)).status).toBe(401)
    expect((await t.client.post('/auth/refresh', { refresh_token: user.refresh })).status).toBe(401)
    await t.client.post(`/users/${user.userId}/activate`, undefined, admin.access)
    expect((await t.client.get('/auth/me', user.access)).status).toBe(401)
    await t.client.login('deactivated_user', 'password-123')
  })

  test('demotion removes admin rights on the very next request', async () => {
    const root = await t.client.loginAdmin()
    const created = await t.client.post('/users', { username: 'second_admin', password: 'password-123', user_role: 'admin' }, root.access)
    const second = await t.client.login('second_admin', 'password-123')
    expect((await t.client.get('/users', second.access)).status).toBe(200)
    await t.client.put(`/users/${created.body.user_id}`, { user_role: 'user' }, root.access)
    expect((await t.client.get('/users', second.access)).status).toBe(403)
    expect((await t.client.get('/auth/me', second.access)).body.user_role).toBe('user')
  })

  test('deletion refuses the tokens at once', async () => {
    const admin = await t.client.loginAdmin()
    const user = await t.client.register('deleted_user')
    await t.client.delete(`/users/${user.userId}`, admin.access)
    expect((await t.client.get('/auth/me', user.access)).status).toBe(401)
    expect((await t.client.post('/auth/refresh', { refresh_token: user.refresh })).status).toBe(401)
  })
})

describe(`expired rows are purged on ${STORE}`, () => {
  test('ended sessions and stale login counters go; live ones, recent ones and lock-outs stay', async () => {
    const p = await createTestApp({ LOGIN_MAX_FAILURES: '2' })
    const { db } = p.context
    const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString()
    const sessionOf = (user: { access: string }) => String(decodePayload(user.access).sid)
    const ended = await p.client.register('purge_ended')
    const recent = await p.client.register('purge_recent')
    const live = await p.client.register('purge_live')
    // Past expiry and past the last access token's lifetime (900 s) too; the recent one may still have a valid access token.
    await db.run('UPDATE sessions SET expires_at = $2 WHERE session_id = $1', [sessionOf(ended), ago(901)])
    await db.run('UPDATE sessions SET expires_at = $2 WHERE session_id = $1', [sessionOf(recent), ago(1)])

    const failLogin = (username: string) => p.client.post('/auth/login', { username, password: 'wrong-password' })
    await failLogin('stale_counter')
    for (let i = 0; i < 2; i++) await failLogin('locked_out')
    // Both windows began long ago; only the lock-out is still running.
    await db.run('UPDATE login_throttle SET window_started_at = $1', [ago(86_400)])

    const purge = async () => ({ sessions: await p.context.sessions.purgeExpired(), loginCounters: await p.context.credentials.password.purgeStale() })
    expect(await purge()).toEqual({ sessions: 1, loginCounters: 2 })
    const sessions = await db.all<{ session_id: string }>('SELECT session_id FROM sessions')
    expect(sessions.map((row) => row.session_id).sort()).toEqual([sessionOf(recent), sessionOf(live)].sort())
    const orphans = await db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM refresh_tokens WHERE session_id = $1', [sessionOf(ended)])
    expect(orphans?.total).toBe(0)

    const refreshEnded = await p.client.post('/auth/refresh', { refresh_token: ended.refresh })
    expect([refreshEnded.status, refreshEnded.body.error]).toEqual([401, 'invalid_refresh_token'])
    expect((await p.client.get('/auth/me', recent.access)).status).toBe(200)
    expect((await p.client.post('/auth/refresh', { refresh_token: live.refresh })).status).toBe(200)
    expect((await p.client.post('/auth/login', { username: 'locked_out', password: 'password-123' })).status).toBe(429)
    expect(await purge()).toEqual({ sessions: 0, loginCounters: 0 })
  })

  test('a backlog larger than one batch is purged whole, batch after batch', async () => {
    const p = await createTestApp()
    for (let i = 0; i < 5; i++) await p.client.register(`backlog_${i}`)
    await p.context.db.run("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'")
    expect(await p.context.sessions.purgeExpired(Date.now(), 2)).toBe(5)
    const left = await p.context.db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM sessions')
    expect(left?.total).toBe(0)
  })
})
