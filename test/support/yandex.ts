/**
 * A Yandex ID for tests, answering in Yandex's shapes (yandex.ru/dev/id/doc): /authorize sends the
 * browser back with a code (or with error=access_denied when `consent` is false), /token checks the
 * client, the redirect_uri and PKCE S256, and /info answers the account behind an `OAuth <token>`,
 * naming the client_id its token was issued to.
 */
export interface YandexAccount {
  id: string
  login: string
  default_email: string
  display_name: string
}

export async function fakeYandex(client: { id: string; secret: string }) {
  const codes = new Map<string, { account: YandexAccount; challenge: string; redirectUri: string; used: boolean }>()
  const tokens = new Map<string, YandexAccount>()
  const state = {
    account: { id: '1130000012345678', login: 'ivan.petrov', default_email: 'ivan.petrov@yandex.ru', display_name: 'Ivan Petrov' } as YandexAccount,
    consent: true,
    /** The client_id /info names: another application's, to pass off its token as ours; undefined leaves it out. */
    tokenIssuedTo: client.id as string | undefined,
    /** How /info answers: as Yandex does, never (a provider that hangs), or with a 503. */
    info: 'answers' as 'answers' | 'hangs' | 'fails',
    /** The Authorization headers /info was called with. */
    infoAuthorizations: [] as string[],
    /** Where the browser really goes back to, when the registered redirect_uri names a host the test cannot hold (a page on a port chosen at start). */
    backTo: undefined as string | undefined,
  }
  const server = Bun.serve({
    port: 0,
    async fetch(request) {
      const url = new URL(request.url)
      if (url.pathname === '/authorize') {
        const query = url.searchParams
        if (query.get('client_id') !== client.id || query.get('code_challenge_method') !== 'S256' || !query.get('code_challenge') || !query.get('state'))
          return new Response('bad authorization request', { status: 400 })
        const back = new URL(state.backTo ?? query.get('redirect_uri') ?? '')
        back.searchParams.set('state', query.get('state') ?? '')
        if (!state.consent) back.searchParams.set('error', 'access_denied')
        else {
          const code = crypto.randomUUID()
          codes.set(code, { account: { ...state.account }, challenge: query.get('code_challenge') ?? '', redirectUri: query.get('redirect_uri') ?? '', used: false })
          back.searchParams.set('code', code)
        }
        return Response.redirect(back.href, 302)
      }
      if (url.pathname === '/token' && request.method === 'POST') {
        const form = new URLSearchParams(await request.text())
        const granted = codes.get(form.get('code') ?? '')
        const challenge = new Bun.CryptoHasher('sha256').update(form.get('code_verifier') ?? '').digest('base64url')
        if (form.get('client_id') !== client.id || form.get('client_secret') !== client.secret) return Response.json({ error: 'invalid_client' }, { status: 401 })
        if (!granted || granted.used || granted.challenge !== challenge || granted.redirectUri !== form.get('redirect_uri'))
          return Response.json({ error: 'invalid_grant', error_description: 'Code has expired or is invalid' }, { status: 400 })
        granted.used = true
        const token = `y0_${crypto.randomUUID()}`
        tokens.set(token, granted.account)
        return Response.json({ access_token: token, token_type: 'bearer', expires_in: 31536000, refresh_token: 'unused' })
      }
      if (url.pathname === '/info') {
        if (state.info === 'hangs') return new Promise<Response>(() => {})
        if (state.info === 'fails') return new Response('Service Unavailable', { status: 503 })
        const authorization = request.headers.get('authorization') ?? ''
        state.infoAuthorizations.push(authorization.split(' ')[0] ?? '')
        const account = tokens.get(authorization.replace(/^OAuth /, ''))
        if (!authorization.startsWith('OAuth ') || !account) return new Response('', { status: 401 })
        const issuedTo = state.tokenIssuedTo === undefined ? {} : { client_id: state.tokenIssuedTo }
        return Response.json({ ...account, real_name: account.display_name, ...issuedTo, psuid: 'x', default_avatar_id: '0/0-0' })
      }
      return new Response('not found', { status: 404 })
    },
  })
  const origin = `http://127.0.0.1:${server.port}`
  return {
    state,
    /** Its entry of OAUTH_PROVIDERS: the yandex preset, with its endpoints here. */
    provider: (redirectUri: string) => ({
      id: 'yandex',
      preset: 'yandex',
      client_id: client.id,
      client_secret: client.secret,
      redirect_uri: redirectUri,
      authorize_url: `${origin}/authorize`,
      token_url: `${origin}/token`,
      userinfo_url: `${origin}/info?format=json`,
    }),
    /** What a browser does at authorize_url: follows the provider back, and reads what it came back with. */
    async visit(authorizeUrl: string): Promise<{ code?: string; state?: string; error?: string }> {
      const answer = await fetch(authorizeUrl, { redirect: 'manual' })
      const back = new URL(answer.headers.get('location') ?? 'http://nowhere.invalid/')
      return Object.fromEntries(['code', 'state', 'error'].filter((key) => back.searchParams.has(key)).map((key) => [key, back.searchParams.get(key) as string]))
    },
    origin,
    stop: () => server.stop(true),
  }
}
