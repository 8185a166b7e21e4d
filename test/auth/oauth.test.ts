import { afterAll, describe, expect, test } from 'bun:test'
import { OAuth2Server } from 'oauth2-mock-server'
import { ConfigError, loadConfig } from '../../src/config'
import { sha256 } from '../../src/lib/crypto'
import { closeTestResources, createTestApp, refusal, STORE, type TestApp } from '../support/harness'
import { fakeYandex } from '../support/yandex'

// Signing up and in with Yandex ID (issue 22): the authorization code flow with PKCE and state, against a
// Yandex that answers in Yandex's shapes; and a second, generic OIDC provider as one more entry of OAUTH_PROVIDERS.

afterAll(closeTestResources)

const REDIRECT_URI = 'https://game.example/lobby'
const CLIENT = { id: 'sim-gateway-test-client', secret: 'yandex-test-secret' }

async function withYandex(env: Record<string, string> = {}) {
  const yandex = await fakeYandex(CLIENT)
  const app = await createTestApp({ OAUTH_PROVIDERS: JSON.stringify([yandex.provider(REDIRECT_URI)]), ...env })
  return { yandex, app }
}

/** The page's part: start, send the browser to Yandex, and check that it came back with the state it kept. */
async function signIn(app: TestApp, yandex: Awaited<ReturnType<typeof fakeYandex>>, token?: string) {
  const started = await app.client.post(`/auth/oauth/yandex/${token ? 'link' : 'start'}`, undefined, token)
  expect(started.status).toBe(200)
  const back = await yandex.visit(started.body.authorize_url)
  expect(back.state).toBe(started.body.state)
  // The flow's secret stays in the page: the callback needs it besides what the browser came back with.
  const callback = { ...back, flow_secret: started.body.flow_secret }
  return { started: started.body, back, callback, finish: () => app.client.post(`/auth/oauth/yandex/${token ? 'link/callback' : 'callback'}`, callback, token) }
}

const userCount = async (app: TestApp) => (await app.client.get('/users?limit=1', (await app.client.loginAdmin()).access)).body.total_count

describe(`signing in with Yandex ID on ${STORE}`, () => {
  test('a new person signs up with Yandex ID and later logs in with it; an account holding the same email is never taken over', async () => {
    const { yandex, app } = await withYandex()
    const holder = await app.client.post('/auth/registrate', { username: 'email_holder', password: 'password-123', email: 'ivan.petrov@yandex.ru' })
    expect(holder.status).toBe(201)
    expect((await app.client.get('/auth/oauth/providers')).body.providers).toEqual([{ id: 'yandex', name: 'Yandex ID' }])

    const first = await signIn(app, yandex)
    const authorize = new URL(first.started.authorize_url)
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: CLIENT.id,
      redirect_uri: REDIRECT_URI,
      code_challenge_method: 'S256',
      scope: 'login:info login:email',
      state: first.started.state,
    })
    const registered = await first.finish()
    expect(registered.status).toBe(201)
    expect(registered.body.user).toMatchObject({ username: 'ivan.petrov', display_name: 'Ivan Petrov', email: null, user_role: 'user' })
    expect(registered.body.user.user_id).not.toBe(holder.body.user.user_id)
    // Yandex's user-info call takes the token as `OAuth <token>`.
    expect(yandex.state.infoAuthorizations).toEqual(['OAuth'])
    const identities = await app.client.get('/auth/identities', registered.body.access_token.token)
    expect(identities.body.identities).toEqual([
      expect.objectContaining({ provider: 'yandex', subject: '1130000012345678', login: 'ivan.petrov', email: 'ivan.petrov@yandex.ru' }),
    ])

    // The account's data names its identity too.
    expect((await app.client.get('/users/me/export', registered.body.access_token.token)).body.identities).toEqual(identities.body.identities)

    const again = await (await signIn(app, yandex)).finish()
    expect(again.status).toBe(200)
    expect(again.body.user.user_id).toBe(registered.body.user.user_id)
    // No password opens an account made by a provider's sign-in.
    expect(refusal(await app.client.post('/auth/login', { username: 'ivan.petrov', password: '' }))).toMatchObject({ status: 422 })
    expect(refusal(await app.client.post('/auth/login', { username: 'ivan.petrov', password: 'any-password' }))).toEqual({ status: 401, error: 'invalid_credentials' })
    // The name is taken next time: another Yandex account with the same login gets another.
    yandex.state.account = { ...yandex.state.account, id: '1130000099999999' }
    expect((await (await signIn(app, yandex)).finish()).body.user.username).toBe('ivan.petrov_2')
    yandex.stop()
  })

  test('refusals: a replayed callback, an unknown state, a code from another sign-in, a denied consent, a token issued to another application or to none named, a provider that fails, hangs or is down; nothing is created', async () => {
    const { yandex, app } = await withYandex()
    const before = await userCount(app)

    const replayed = await signIn(app, yandex)
    expect((await replayed.finish()).status).toBe(201)
    expect(refusal(await replayed.finish())).toEqual({ status: 400, error: 'bad_request' })
    expect(refusal(await app.client.post('/auth/oauth/yandex/callback', { state: 'never-started', flow_secret: 'x', code: 'x' }))).toEqual({ status: 400, error: 'bad_request' })
    // Code and state seen on their way back (a proxy's log, a history) are worth nothing without the page's secret, and spend nothing.
    const seen = await signIn(app, yandex)
    expect(refusal(await app.client.post('/auth/oauth/yandex/callback', { ...seen.back, flow_secret: 'guessed' }))).toEqual({ status: 400, error: 'bad_request' })
    expect(refusal(await app.client.post('/auth/oauth/yandex/callback', seen.back))).toEqual({ status: 422, error: 'validation_error' })
    expect((await seen.finish()).status).toBe(200)

    // PKCE: a code obtained for one sign-in, brought back with another's state, fails the verifier.
    const one = await signIn(app, yandex)
    const other = await signIn(app, yandex)
    expect(refusal(await app.client.post('/auth/oauth/yandex/callback', { ...other.callback, code: one.back.code }))).toEqual({ status: 422, error: 'validation_error' })

    yandex.state.consent = false
    const denied = await signIn(app, yandex)
    expect(denied.back.error).toBe('access_denied')
    expect(refusal(await denied.finish())).toEqual({ status: 400, error: 'access_denied' })
    yandex.state.consent = true

    yandex.state.account = { ...yandex.state.account, id: '1130000000000001' }
    for (const issuedTo of ['another-application', undefined]) {
      yandex.state.tokenIssuedTo = issuedTo
      expect(refusal(await (await signIn(app, yandex)).finish())).toEqual({ status: 401, error: 'unauthorized' })
    }
    yandex.state.tokenIssuedTo = CLIENT.id

    // A provider that answers 5xx, or not at all within OAUTH_TIMEOUT (1 s there): 502 in time, nothing made.
    yandex.state.info = 'fails'
    expect(refusal(await (await signIn(app, yandex)).finish())).toEqual({ status: 502, error: 'bad_gateway' })
    yandex.state.info = 'answers'
    const slow = await withYandex({ OAUTH_TIMEOUT: '1' })
    slow.yandex.state.info = 'hangs'
    const slowBefore = await userCount(slow.app)
    const hanging = await signIn(slow.app, slow.yandex)
    const askedAt = performance.now()
    expect(refusal(await hanging.finish())).toEqual({ status: 502, error: 'bad_gateway' })
    expect(performance.now() - askedAt).toBeLessThan(6000)
    expect(await userCount(slow.app)).toBe(slowBefore)
    slow.yandex.stop()

    // The state and the page's secret are kept as hashes: a copy of the database signs nobody in.
    const kept = await signIn(app, yandex)
    const stored = JSON.stringify(await app.context.db.all('SELECT * FROM oauth_states'))
    expect(stored).not.toContain(kept.started.state)
    expect(stored).not.toContain(kept.started.flow_secret)
    expect(stored).toContain(sha256(kept.started.state))

    const late = await signIn(app, yandex)
    yandex.stop()
    expect(refusal(await late.finish())).toEqual({ status: 502, error: 'bad_gateway' })
    expect(refusal(await app.client.post('/auth/oauth/nowhere/start'))).toEqual({ status: 404, error: 'not_found' })
    // Only the first, whole sign-in made an account.
    expect(await userCount(app)).toBe(before + 1)
  })

  test('sign-ins never finished are forgotten once OAUTH_STATE_TTL has passed, in batches', async () => {
    const { yandex, app } = await withYandex({ OAUTH_STATE_TTL: '60' })
    for (let i = 0; i < 3; i++) await signIn(app, yandex)
    const count = async () => (await app.context.db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM oauth_states'))?.total
    expect(await app.context.credentials.oauth.purgeExpired(Date.now() + 30_000)).toBe(0)
    expect(await app.context.credentials.oauth.purgeExpired(Date.now() + 61_000, 2)).toBe(3)
    expect(await count()).toBe(0)
    yandex.stop()
  })

  test('bursts: forty callbacks with one state make one session; ten first sign-ins of one new account at once make one account', async () => {
    const { yandex, app } = await withYandex()
    const once = await signIn(app, yandex)
    const answers = await Promise.all(Array.from({ length: 40 }, () => once.finish()))
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(1)
    expect(answers.filter((answer) => answer.status !== 201).map(refusal)).toEqual(Array(39).fill({ status: 400, error: 'bad_request' }))

    yandex.state.account = { ...yandex.state.account, id: '1130000000000777', login: 'burst.newcomer' }
    const before = await userCount(app)
    const sameAccount = await Promise.all(Array.from({ length: 10 }, () => signIn(app, yandex)))
    const signedIn = await Promise.all(sameAccount.map((sign) => sign.finish()))
    expect(signedIn.map((answer) => answer.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201])
    expect(new Set(signedIn.map((answer) => answer.body.user.user_id)).size).toBe(1)
    expect(await userCount(app)).toBe(before + 1)
    yandex.stop()
  })

  test('linking: a user with a password links Yandex and logs in with it; another account or a second link is 409; the last way in stays; an unlinked identity signs up anew', async () => {
    const { yandex, app } = await withYandex()
    const alice = await app.client.register('link_alice')
    const bob = await app.client.register('link_bob')
    const linked = await (await signIn(app, yandex, alice.access)).finish()
    expect(linked.status).toBe(201)
    expect(linked.body).toMatchObject({ provider: 'yandex', subject: yandex.state.account.id })
    expect((await (await signIn(app, yandex)).finish()).body.user.user_id).toBe(alice.userId)

    expect(refusal(await (await signIn(app, yandex, bob.access)).finish())).toEqual({ status: 409, error: 'conflict', reason: 'link_taken' })
    yandex.state.account = { ...yandex.state.account, id: '1130000000000002', login: 'second.account' }
    expect(refusal(await (await signIn(app, yandex, alice.access)).finish())).toEqual({ status: 409, error: 'conflict', reason: 'already_linked' })
    // A linking state cannot log in, and a login state cannot link.
    const linking = await signIn(app, yandex, alice.access)
    expect(refusal(await app.client.post('/auth/oauth/yandex/callback', linking.callback))).toEqual({ status: 400, error: 'bad_request' })

    // The account made by Yandex has no password: its only identity stays.
    const made = await (await signIn(app, yandex)).finish()
    expect(made.status).toBe(201)
    const own = (await app.client.get('/auth/identities', made.body.access_token.token)).body.identities[0]
    expect(refusal(await app.client.delete(`/auth/identities/${own.identity_id}`, made.body.access_token.token))).toEqual({
      status: 409,
      error: 'conflict',
      reason: 'last_way_in',
    })
    expect(refusal(await app.client.delete(`/auth/identities/${own.identity_id}`, alice.access))).toEqual({ status: 404, error: 'not_found' })

    // Alice has a password: she may unlink, and that Yandex account then signs up anew, never as her.
    yandex.state.account = { ...yandex.state.account, id: linked.body.subject, login: 'ivan.petrov' }
    expect((await app.client.delete(`/auth/identities/${linked.body.identity_id}`, alice.access)).status).toBe(200)
    const anew = await (await signIn(app, yandex)).finish()
    expect(anew.status).toBe(201)
    expect(anew.body.user.user_id).not.toBe(alice.userId)
    yandex.stop()
  })

  test('a second, generic OpenID Connect provider is one more entry of OAUTH_PROVIDERS', async () => {
    const oidc = new OAuth2Server()
    await oidc.issuer.keys.generate('RS256')
    await oidc.start(0, '127.0.0.1')
    const issuer = oidc.issuer.url ?? ''
    oidc.service.on('beforeUserinfo', (answer) => {
      answer.body = { sub: 'corp-0042', preferred_username: 'olga.k', email: 'olga@corp.example', email_verified: true, name: 'Olga K.' }
    })
    const yandex = await fakeYandex(CLIENT)
    const corp = { id: 'corp', name: 'Corporate SSO', client_id: 'sim', client_secret: 'corp-secret', redirect_uri: REDIRECT_URI }
    const endpoints = { authorize_url: `${issuer}/authorize`, token_url: `${issuer}/token`, userinfo_url: `${issuer}/userinfo` }
    const app = await createTestApp({ OAUTH_PROVIDERS: JSON.stringify([yandex.provider(REDIRECT_URI), { ...corp, ...endpoints }]) })
    expect((await app.client.get('/auth/oauth/providers')).body.providers).toEqual([
      { id: 'yandex', name: 'Yandex ID' },
      { id: 'corp', name: 'Corporate SSO' },
    ])
    const started = await app.client.post('/auth/oauth/corp/start')
    expect(new URL(started.body.authorize_url).searchParams.get('scope')).toBe('openid profile email')
    const back = new URL((await fetch(started.body.authorize_url, { redirect: 'manual' })).headers.get('location') ?? '')
    expect(back.searchParams.get('state')).toBe(started.body.state)
    const signedIn = await app.client.post('/auth/oauth/corp/callback', { state: started.body.state, flow_secret: started.body.flow_secret, code: back.searchParams.get('code') })
    expect(signedIn.status).toBe(201)
    expect(signedIn.body.user).toMatchObject({ username: 'olga.k', display_name: 'Olga K.' })
    expect((await app.client.get('/auth/identities', signedIn.body.access_token.token)).body.identities).toEqual([
      expect.objectContaining({ provider: 'corp', subject: 'corp-0042', email: 'olga@corp.example' }),
    ])
    await oidc.stop()
    yandex.stop()
  })

  test('OAUTH_PROVIDERS is checked at start-up, naming the bad entry and field', () => {
    const bad = (providers: unknown) => {
      try {
        loadConfig({ OAUTH_PROVIDERS: JSON.stringify(providers) })
        return []
      } catch (error) {
        return (error as ConfigError).problems
      }
    }
    expect(bad({ id: 'x' })).toEqual(['OAUTH_PROVIDERS must be a JSON array of providers'])
    expect(bad([{ id: 'yandex', preset: 'yandex', client_secret: 's', redirect_uri: REDIRECT_URI }])).toEqual(['OAUTH_PROVIDERS[0].client_id: Expected required property'])
    expect(bad([{ id: 'corp', client_id: 'c', client_secret: 's', redirect_uri: REDIRECT_URI, authorize_url: 'https://id.example/auth' }])).toEqual([
      'OAUTH_PROVIDERS[0].token_url: required without a preset',
      'OAUTH_PROVIDERS[0].userinfo_url: required without a preset',
    ])
    expect(bad([{ id: 'yandex', preset: 'yandex', client_id: 'c', client_secret: 's', redirect_uri: 'javascript:alert(1)' }])).toEqual([
      'OAUTH_PROVIDERS[0].redirect_uri: expected an http(s) URL',
    ])
    expect(() => loadConfig({ OAUTH_PROVIDERS: 'yandex' })).toThrow('OAUTH_PROVIDERS must be a JSON array')
  })
})
