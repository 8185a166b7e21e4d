import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { EXAMPLE_P256_KEY } from '../../src/modules/credentials/model'
import { closeTestResources, createTestApp, expectEnvelope, STORE, type TestApp } from '../support/harness'

afterAll(closeTestResources)

type Actor = 'anonymous' | 'user' | 'admin'
interface Call {
  method: string
  path: string
  body?: unknown
}
interface Case {
  route: string
  expected: Record<Actor, number>
  /** A valid request: only who sends it decides the answer. */
  call: () => Promise<Call>
}

let t: TestApp
let serial = 0
const uniqueName = () => `matrix_${++serial}`
const PASSWORD = 'password-123'
const registered = async () => t.client.register(uniqueName(), PASSWORD)

const anyone = (status: number) => ({ anonymous: status, user: status, admin: status })
const userRoute = (status = 200) => ({ anonymous: 401, user: status, admin: status })
const adminRoute = (status = 200) => ({ anonymous: 401, user: 403, admin: status })

/** A desktop's fresh QR login request: its code is what the phone-side routes take. */
async function qrRequest(): Promise<{ code: string }> {
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign'])
  const { x, y } = await crypto.subtle.exportKey('jwk', keys.publicKey)
  return (await t.client.post('/auth/qr', { public_key: { kty: 'EC', crv: 'P-256', x, y }, encryption_key: EXAMPLE_P256_KEY })).body
}

const vkLink = () => ({ social_network: 'vk', connection_link: `https://vk.com/${uniqueName()}` })

/** A user with a VK page linked by themselves, and the link's id. */
async function linked(): Promise<{ userId: string; linkedAccountId: string }> {
  const owner = await registered()
  const link = await t.client.post('/users/me/linked-accounts', vkLink(), owner.access)
  return { userId: owner.userId, linkedAccountId: link.body.linked_account_id }
}

async function linkedAccountPath(): Promise<string> {
  const { userId, linkedAccountId } = await linked()
  return `/users/${userId}/linked-accounts/${linkedAccountId}`
}

/** An account an admin deleted (temporarily). */
async function deletedUserId(): Promise<string> {
  const { userId } = await registered()
  const root = await t.client.login('root_admin', PASSWORD)
  expect((await t.client.delete(`/users/${userId}`, root.access)).status).toBe(200)
  return userId
}

// Routes that act on the caller's own things by id (their linked accounts, rooms, messages, conversations) are
// refused to others where those rules are tested (linked-accounts, rooms, chat, dms); here, who may call at all.
const CASES: Case[] = [
  { route: 'GET /auth/oauth/providers', expected: anyone(200), call: async () => ({ method: 'GET', path: '/auth/oauth/providers' }) },
  { route: 'GET /auth/identities', expected: userRoute(), call: async () => ({ method: 'GET', path: '/auth/identities' }) },
  { route: 'POST /auth/qr', expected: anyone(201), call: async () => ({ method: 'POST', path: '/auth/qr', body: { public_key: EXAMPLE_P256_KEY, encryption_key: EXAMPLE_P256_KEY } }) },
  { route: 'POST /auth/qr/inspect', expected: userRoute(), call: async () => ({ method: 'POST', path: '/auth/qr/inspect', body: { code: (await qrRequest()).code } }) },
  { route: 'POST /auth/qr/approve', expected: userRoute(), call: async () => ({ method: 'POST', path: '/auth/qr/approve', body: { code: (await qrRequest()).code } }) },
  { route: 'POST /auth/qr/deny', expected: userRoute(), call: async () => ({ method: 'POST', path: '/auth/qr/deny', body: { code: (await qrRequest()).code } }) },
  { route: 'POST /auth/registrate', expected: anyone(201), call: async () => ({ method: 'POST', path: '/auth/registrate', body: { username: uniqueName(), password: PASSWORD } }) },
  { route: 'POST /auth/login', expected: anyone(200), call: async () => ({ method: 'POST', path: '/auth/login', body: { username: (await registered()).username, password: PASSWORD } }) },
  { route: 'POST /auth/refresh', expected: anyone(200), call: async () => ({ method: 'POST', path: '/auth/refresh', body: { refresh_token: (await registered()).refresh } }) },
  { route: 'POST /auth/logout', expected: userRoute(), call: async () => ({ method: 'POST', path: '/auth/logout' }) },
  { route: 'GET /auth/me', expected: userRoute(), call: async () => ({ method: 'GET', path: '/auth/me' }) },
  { route: 'GET /auth/verify-token', expected: userRoute(), call: async () => ({ method: 'GET', path: '/auth/verify-token' }) },
  { route: 'POST /auth/verify-token', expected: userRoute(), call: async () => ({ method: 'POST', path: '/auth/verify-token' }) },
  // The password is the one every actor's fresh session below was opened with.
  { route: 'POST /auth/change-password', expected: userRoute(), call: async () => ({ method: 'POST', path: '/auth/change-password', body: { current_password: PASSWORD, new_password: 'another-password' } }) },
  { route: 'GET /users/me', expected: userRoute(), call: async () => ({ method: 'GET', path: '/users/me' }) },
  { route: 'PUT /users/me', expected: userRoute(), call: async () => ({ method: 'PUT', path: '/users/me', body: { username: uniqueName() } }) },
  { route: 'POST /users', expected: adminRoute(201), call: async () => ({ method: 'POST', path: '/users', body: { username: uniqueName(), password: PASSWORD } }) },
  { route: 'GET /users', expected: adminRoute(), call: async () => ({ method: 'GET', path: '/users?limit=5' }) },
  { route: 'GET /users/{id}', expected: adminRoute(), call: async () => ({ method: 'GET', path: `/users/${(await registered()).userId}` }) },
  { route: 'PUT /users/{id}', expected: adminRoute(), call: async () => ({ method: 'PUT', path: `/users/${(await registered()).userId}`, body: { username: uniqueName() } }) },
  { route: 'DELETE /users/{id}', expected: adminRoute(), call: async () => ({ method: 'DELETE', path: `/users/${(await registered()).userId}` }) },
  { route: 'POST /users/{id}/deactivate', expected: adminRoute(), call: async () => ({ method: 'POST', path: `/users/${(await registered()).userId}/deactivate` }) },
  { route: 'POST /users/{id}/activate', expected: adminRoute(), call: async () => ({ method: 'POST', path: `/users/${(await registered()).userId}/activate` }) },
  // An admin deletes another admin's account, never their own (409 self_target).
  { route: 'DELETE /users/me', expected: { anonymous: 401, user: 200, admin: 409 }, call: async () => ({ method: 'DELETE', path: '/users/me', body: { password: PASSWORD } }) },
  { route: 'GET /users/me/export', expected: userRoute(), call: async () => ({ method: 'GET', path: '/users/me/export' }) },
  { route: 'POST /users/{id}/restore', expected: adminRoute(), call: async () => ({ method: 'POST', path: `/users/${await deletedUserId()}/restore` }) },
  { route: 'GET /users/me/linked-accounts', expected: userRoute(), call: async () => ({ method: 'GET', path: '/users/me/linked-accounts' }) },
  { route: 'POST /users/me/linked-accounts', expected: userRoute(201), call: async () => ({ method: 'POST', path: '/users/me/linked-accounts', body: vkLink() }) },
  { route: 'GET /users/{id}/linked-accounts', expected: adminRoute(), call: async () => ({ method: 'GET', path: `/users/${(await linked()).userId}/linked-accounts` }) },
  { route: 'POST /users/{id}/linked-accounts', expected: adminRoute(201), call: async () => ({ method: 'POST', path: `/users/${(await registered()).userId}/linked-accounts`, body: vkLink() }) },
  {
    route: 'PUT /users/{id}/linked-accounts/{id}',
    expected: adminRoute(),
    call: async () => ({ method: 'PUT', path: await linkedAccountPath(), body: { connected_for: 'changed by an admin' } }),
  },
  { route: 'DELETE /users/{id}/linked-accounts/{id}', expected: adminRoute(), call: async () => ({ method: 'DELETE', path: await linkedAccountPath() }) },
  { route: 'DELETE /users/me/avatar', expected: userRoute(), call: async () => ({ method: 'DELETE', path: '/users/me/avatar' }) },
  { route: 'DELETE /users/{id}/avatar', expected: adminRoute(), call: async () => ({ method: 'DELETE', path: `/users/${(await registered()).userId}/avatar` }) },
  { route: 'GET /health', expected: anyone(200), call: async () => ({ method: 'GET', path: '/health' }) },
  { route: 'GET /ready', expected: anyone(200), call: async () => ({ method: 'GET', path: '/ready' }) },
  { route: 'GET /swagger/json', expected: anyone(200), call: async () => ({ method: 'GET', path: '/swagger/json' }) },
]

beforeAll(async () => {
  // Admins are made per call below, so the admin password must match PASSWORD too.
  t = await createTestApp({ ADMIN_PASSWORD: PASSWORD })
})

/** A fresh session for each call, so that logout or a password change in one call cannot affect another. */
async function tokenFor(actor: Actor): Promise<string | undefined> {
  if (actor === 'anonymous') return undefined
  if (actor === 'user') return (await registered()).access
  const root = await t.client.login('root_admin', PASSWORD)
  const name = uniqueName()
  await t.client.post('/users', { username: name, password: PASSWORD, user_role: 'admin' }, root.access)
  return (await t.client.login(name, PASSWORD)).access
}

describe(`access matrix on ${STORE} (SECURITY 14): every route x anonymous, user, admin`, () => {
  for (const { route, expected, call } of CASES) {
    test(route, async () => {
      for (const actor of ['anonymous', 'user', 'admin'] as const) {
        const token = await tokenFor(actor)
        const { method, path, body } = await call()
        const reply = await t.client.call(method, path, { token, body })
        expect({ actor, status: reply.status }).toEqual({ actor, status: expected[actor] })
        if (reply.status >= 400) expect(expectEnvelope(reply)).toBe(({ 401: 'unauthorized', 403: 'forbidden', 409: 'conflict' } as Record<number, string>)[reply.status]!)
      }
    })
  }

  test('a caller without a valid token is refused before the input is validated', async () => {
    const user = await registered()
    expect((await t.client.post('/auth/change-password', { unexpected: 1 })).status).toBe(401)
    expect((await t.client.get('/users/not-a-uuid')).status).toBe(401)
    expect((await t.client.get('/users?limit=0', user.access)).status).toBe(403)
    expect((await t.client.post('/users', { username: 'x' }, user.access)).status).toBe(403)
  })

  test('a user never reaches another user through the admin routes', async () => {
    const alice = await registered()
    const bob = await registered()
    for (const [method, path, body] of [
      ['GET', `/users/${bob.userId}`],
      ['PUT', `/users/${bob.userId}`, { username: 'stolen_name' }],
      ['DELETE', `/users/${bob.userId}`],
      ['POST', `/users/${bob.userId}/deactivate`],
    ] as const) {
      expect((await t.client.call(method, path, { token: alice.access, body })).status).toBe(403)
    }
    expect((await t.client.get('/auth/me', bob.access)).body).toMatchObject({ username: bob.username, is_active: true })
  })
})
