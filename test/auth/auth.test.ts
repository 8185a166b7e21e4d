import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, expectEnvelope, STORE, type TestApp } from '../support/harness'

afterAll(closeTestResources)

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})

describe(`auth routes on ${STORE}`, () => {
  test('registration answers 201 with a token pair and an active user', async () => {
    const reply = await t.client.post('/auth/registrate', { username: 'Reg_User', password: 'password-123' })
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({
      success: true,
      access_token: { token_type: 'bearer', expires_in: 900 },
      refresh_token: { token_type: 'refresh', expires_in: 2_592_000 },
      user: { username: 'Reg_User', user_role: 'user', is_active: true },
    })
    expect(reply.body.user.user_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/)
    expect(reply.body.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    expect(reply.body.user).not.toHaveProperty('password_hash')
  })

  test('a taken username, in any case, is 409', async () => {
    await t.client.register('taken_name')
    const reply = await t.client.post('/auth/registrate', { username: 'TAKEN_name', password: 'password-123' })
    expect(reply.status).toBe(409)
    expect(expectEnvelope(reply)).toBe('conflict')
  })

  test('registration cannot smuggle a role or any other field', async () => {
    const reply = await t.client.post('/auth/registrate', { username: 'sneaky', password: 'password-123', user_role: 'admin' })
    expect(reply.status).toBe(422)
    expect(reply.body.details).toContainEqual(expect.objectContaining({ field: '/user_role' }))
    expect((await t.client.post('/auth/login', { username: 'sneaky', password: 'password-123' })).status).toBe(401)
  })

  test('usernames and passwords outside their limits are 422 with the offending field', async () => {
    const cases = [
      [{ username: 'ab', password: 'password-123' }, '/username'],
      [{ username: 'a'.repeat(33), password: 'password-123' }, '/username'],
      [{ username: 'bad name', password: 'password-123' }, '/username'],
      [{ username: 'short_pw', password: '1234567' }, '/password'],
      [{ username: 'long_pw', password: 'p'.repeat(129) }, '/password'],
      [{ username: 'no_password' }, '/password'],
    ] as const
    for (const [body, field] of cases) {
      const reply = await t.client.post('/auth/registrate', body)
      expect(reply.status).toBe(422)
      expect(expectEnvelope(reply)).toBe('validation_error')
      expect(reply.body.details.map((detail: { field: string }) => detail.field)).toContain(field)
    }
  })

  test('a password with an unpaired surrogate is refused: it would be hashed as U+FFFD and match other passwords', async () => {
    for (const password of ['\ud800abcdefgh', 'abcdefgh\udfff']) {
      const reply = await t.client.post('/auth/registrate', { username: 'surrogate_user', password })
      expect(reply.status).toBe(422)
      expect(reply.body.details[0]).toEqual({ field: '/password', message: 'must not contain unpaired surrogates' })
    }
    const emoji = await t.client.post('/auth/registrate', { username: 'emoji_password', password: 'pass\u{1F511}word' })
    expect(emoji.status).toBe(201)
    expect((await t.client.post('/auth/login', { username: 'emoji_password', password: 'pass\u{1F511}word' })).status).toBe(200)
  })

  test('passwords of 8 and 128 characters, with no composition rules and no truncation', async () => {
    await t.client.register('eight_chars', 'aaaaaaaa')
    const long = 'Ж'.repeat(127) + 'x'
    await t.client.register('long_password', long)
    expect((await t.client.post('/auth/login', { username: 'long_password', password: long })).status).toBe(200)
    // A password that differs only in its last character must not match: nothing is cut off.
    expect((await t.client.post('/auth/login', { username: 'long_password', password: 'Ж'.repeat(127) + 'y' })).status).toBe(401)
  })

  test('login works in any username case; wrong password and unknown user answer the same 401', async () => {
    await t.client.register('Login_Case', 'password-123')
    expect((await t.client.post('/auth/login', { username: 'login_case', password: 'password-123' })).status).toBe(200)
    const wrong = await t.client.post('/auth/login', { username: 'Login_Case', password: 'wrong-password' })
    const unknown = await t.client.post('/auth/login', { username: 'nobody_here', password: 'wrong-password' })
    expect(wrong.status).toBe(401)
    expect(unknown.status).toBe(401)
    const strip = ({ timestamp: _, ...rest }: Record<string, unknown>) => rest
    expect(strip(wrong.body)).toEqual(strip(unknown.body))
    expect(wrong.body.error).toBe('invalid_credentials')
  })

  test('a deactivated account with the right password is 403 account_inactive', async () => {
    const admin = await t.client.loginAdmin()
    const user = await t.client.register('soon_inactive')
    expect((await t.client.post(`/users/${user.userId}/deactivate`, undefined, admin.access)).status).toBe(200)
    const reply = await t.client.post('/auth/login', { username: 'soon_inactive', password: 'password-123' })
    expect(reply.status).toBe(403)
    expect(reply.body.error).toBe('account_inactive')
  })

  test('GET /auth/me and /users/me return the caller', async () => {
    const user = await t.client.register('me_myself')
    for (const path of ['/auth/me', '/users/me']) {
      const reply = await t.client.get(path, user.access)
      expect(reply.status).toBe(200)
      expect(reply.body).toMatchObject({ user_id: user.userId, username: 'me_myself', user_role: 'user', is_active: true })
    }
  })

  test('verify-token answers GET and POST with the identity headers for a proxy', async () => {
    const user = await t.client.register('proxied')
    for (const method of ['GET', 'POST']) {
      const reply = await t.client.call(method, '/auth/verify-token', { token: user.access })
      expect(reply.status).toBe(200)
      expect(reply.body.success).toBe(true)
      expect(reply.headers.get('x-user-id')).toBe(user.userId)
      expect(reply.headers.get('x-user-role')).toBe('user')
      expect((await t.client.call(method, '/auth/verify-token')).status).toBe(401)
    }
  })

  test('refresh accepts the Token object or the bare string, and returns a new pair', async () => {
    const login = await t.client.register('refresher')
    const first = await t.client.post('/auth/refresh', { refresh_token: { token: login.refresh, token_type: 'refresh', expires_in: 2_592_000 } })
    expect(first.status).toBe(200)
    expect(first.body.refresh_token.token).not.toBe(login.refresh)
    const second = await t.client.post('/auth/refresh', { refresh_token: first.body.refresh_token.token })
    expect(second.status).toBe(200)
    expect((await t.client.get('/auth/me', second.body.access_token.token)).status).toBe(200)
  })

  test('refresh with an unknown token is 401 invalid_refresh_token, with a malformed body 422', async () => {
    const unknown = await t.client.post('/auth/refresh', { refresh_token: 'not-a-real-token' })
    expect(unknown.status).toBe(401)
    expect(unknown.body.error).toBe('invalid_refresh_token')
    expect((await t.client.post('/auth/refresh', { refresh_token: 42 })).status).toBe(422)
    expect((await t.client.post('/auth/refresh', {})).status).toBe(422)
  })

  test('logout ends the session: its access and refresh tokens are refused at once', async () => {
    const user = await t.client.register('leaver')
    const reply = await t.client.post('/auth/logout', undefined, user.access)
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ success: true })
    expect((await t.client.get('/auth/me', user.access)).status).toBe(401)
    const refresh = await t.client.post('/auth/refresh', { refresh_token: user.refresh })
    expect(refresh.status).toBe(401)
    expect((await t.client.post('/auth/logout')).status).toBe(401)
  })

  test('change-password: needs the current password, ends other sessions, keeps this one', async () => {
    const a = await t.client.register('changer', 'old-password')
    const b = await t.client.login('changer', 'old-password')
    const wrong = await t.client.post('/auth/change-password', { current_password: 'nope-nope', new_password: 'new-password' }, a.access)
    expect(wrong.status).toBe(401)
    expect(wrong.body.error).toBe('invalid_credentials')
    expect((await t.client.post('/auth/change-password', { current_password: 'old-password', new_password: 'short' }, a.access)).status).toBe(422)

    const ok = await t.client.post('/auth/change-password', { current_password: 'old-password', new_password: 'new-password' }, a.access)
    expect(ok.status).toBe(200)
    expect((await t.client.get('/auth/me', a.access)).status).toBe(200)
    expect((await t.client.post('/auth/refresh', { refresh_token: a.refresh })).status).toBe(200)
    expect((await t.client.get('/auth/me', b.access)).status).toBe(401)
    expect((await t.client.post('/auth/refresh', { refresh_token: b.refresh })).status).toBe(401)
    expect((await t.client.post('/auth/login', { username: 'changer', password: 'old-password' })).status).toBe(401)
    expect((await t.client.post('/auth/login', { username: 'changer', password: 'new-password' })).status).toBe(200)
    expect((await t.client.post('/auth/change-password', { current_password: 'x', new_password: 'new-password' })).status).toBe(401)
  })

  test('PASSWORD_MIN_LENGTH above 8 is enforced on registration and password change', async () => {
    const strict = await createTestApp({ PASSWORD_MIN_LENGTH: '12', ADMIN_PASSWORD: 'root-admin-password' })
    const reply = await strict.client.post('/auth/registrate', { username: 'strict_user', password: 'eleven-char' })
    expect(reply.status).toBe(422)
    expect(reply.body.details).toEqual([{ field: '/password', message: 'must be at least 12 characters' }])
    const user = await strict.client.register('strict_ok', 'twelve-chars')
    const change = await strict.client.post('/auth/change-password', { current_password: 'twelve-chars', new_password: 'eleven-char' }, user.access)
    expect(change.status).toBe(422)
    expect(change.body.details[0].field).toBe('/new_password')
  })
})
