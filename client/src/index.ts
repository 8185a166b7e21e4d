import { type Treaty, treaty } from '@elysiajs/eden'
import type { App } from '../../src/app'
import { RealtimeConnection, type RealtimeOptions } from './realtime'
import { unseal } from './sealed'

export { type ConnectionState, RealtimeConnection, type RealtimeEvent, type RealtimeOptions, type RealtimePositions } from './realtime'

/** What login, registration and refresh hand out: the access token for requests, the refresh token to renew it. */
export interface Tokens {
  access: string
  refresh: string
}

export interface GatewayClientOptions {
  /** Tokens from an earlier session, to go on with it. */
  tokens?: Tokens
  /** Called whenever the tokens change (login, refresh, logout): keep them where the app keeps secrets. */
  onTokens?: (tokens: Tokens | undefined) => void
  /** A fetch of your own (tests, instrumentation); the global one by default. */
  fetch?: typeof fetch
  /**
   * Tokens shared with other holders (the tabs of a browser): refresh tokens rotate, and a spent one
   * presented again ends the session, so a renewal runs under `lock` and first reads what another
   * holder may have renewed meanwhile. In a browser: localStorage and navigator.locks.
   */
  shared?: { read(): Tokens | undefined; lock<Result>(work: () => Promise<Result>): Promise<Result> }
}

type FetchInput = Parameters<typeof fetch>[0]

/** Eden Treaty over the server's routes: `api.rooms.my.get()`, `api.auth.login.post({ username, password })`. */
export type GatewayApi = Treaty.Create<App>

export interface GatewayClient {
  api: GatewayApi
  /** The tokens held now, if any. */
  readonly tokens: Tokens | undefined
  login(username: string, password: string): ReturnType<GatewayApi['auth']['login']['post']>
  register(username: string, password: string): ReturnType<GatewayApi['auth']['registrate']['post']>
  /** Ends the session at the server and forgets the tokens. */
  logout(): ReturnType<GatewayApi['auth']['logout']['post']>
  /** Renews the access token now (it is also renewed on its own when a request answers 401); false when the session is over, throws when the server cannot say. */
  refresh(): Promise<boolean>
  /** Opens /realtime with this client's tokens (renewed as needed): events live, resumed after every drop. */
  realtime(options: Omit<RealtimeOptions, 'baseUrl' | 'token'>): RealtimeConnection
  /**
   * Logs this device in with a phone that is logged in: answers what to show (the QR and four
   * words) and `outcome`, which settles once the phone decided and, if it approved, this client
   * holds the new session's tokens. The private key never leaves this browser.
   */
  startQrLogin(): Promise<QrLogin>
  /**
   * Finishes a sign-in at a provider (started with `api.auth.oauth({ provider }).start.post()`): hands the
   * service what the browser came back with and, if it answers a session, holds its tokens.
   */
  finishSignIn(provider: string, callback: { state: string; flow_secret: string; code?: string; error?: string }): ReturnType<ReturnType<GatewayApi['auth']['oauth']>['callback']['post']>
}

export interface QrLogin {
  /** An SVG document: the QR to scan. */
  qrSvg: string
  /** What the QR carries: the lobby page with the code in its fragment. */
  link: string
  /** The code alone, for a phone that cannot scan (typed in there). */
  code: string
  /** Shown on the phone too, to tell this device from another. */
  verificationWords: string[]
  /** When the request ends if nobody approves it. */
  expiresAt: Date
  outcome: Promise<'logged_in' | 'denied' | 'expired'>
  /** Stops waiting (the outcome settles as `expired`). */
  cancel(): void
}

type TokenAnswer = { access_token: { token: string }; refresh_token: { token: string } }

/**
 * A typed client of Simulator Gateway: `client.api` is Eden Treaty over the server's own route
 * types (`client.api.rooms.my.get()`, `client.api.auth.login.post({ username, password })`), with
 * the bearer token added to every request. When a request answers 401 and a refresh token is held,
 * the client trades it once at /auth/refresh (one trade at a time, however many requests were
 * refused: refresh tokens rotate, and presenting a spent one ends the session) and repeats the
 * request with the new access token.
 */
export function createGatewayClient(baseUrl: string, options: GatewayClientOptions = {}): GatewayClient {
  const send = options.fetch ?? fetch
  let tokens = options.tokens
  let refreshing: Promise<boolean> | undefined

  const keep = (next: Tokens | undefined) => {
    tokens = next
    options.onTokens?.(next)
  }
  const keepFrom = (answer: TokenAnswer) => keep({ access: answer.access_token.token, refresh: answer.refresh_token.token })

  const shared = options.shared ?? { read: () => tokens, lock: <Result>(work: () => Promise<Result>) => work() }
  /**
   * Trades the refresh token for a new pair; false when it is refused (the session is over). A
   * failure on the way (no network, 429, 5xx) throws and keeps the tokens: the session may well live.
   */
  const refresh = () =>
    (refreshing ??= shared.lock(async () => {
      const held = tokens
      if (!held) return false
      // Another holder renewed them meanwhile: theirs are the live pair.
      const stored = shared.read()
      if (stored && stored.refresh !== held.refresh) {
        tokens = stored
        return true
      }
      const response = await send(new URL('auth/refresh', withSlash(baseUrl)), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: held.refresh }),
      })
      if (response.status === 400 || response.status === 401 || response.status === 422) {
        if (tokens === held) keep(undefined)
        return false
      }
      if (!response.ok) throw new Error(`the token renewal answered ${response.status}; try again later`)
      keepFrom((await response.json()) as TokenAnswer)
      return true
    }).finally(() => {
      refreshing = undefined
    }))

  const authorised = (init: RequestInit | undefined): RequestInit => {
    const headers = new Headers(init?.headers)
    if (tokens) headers.set('authorization', `Bearer ${tokens.access}`)
    return { ...init, headers }
  }

  const fetcher = (async (input: FetchInput, init?: RequestInit) => {
    const sentWith = tokens
    const response = await send(input, authorised(init))
    if (response.status !== 401 || !sentWith || isTokenRoute(input)) return response
    // Another request may have refreshed already while this one was on its way.
    if (tokens === sentWith && !(await refresh())) return response
    return tokens ? send(input, authorised(init)) : response
  }) as typeof fetch

  const api: GatewayApi = treaty<App>(baseUrl, { fetcher })

  return {
    api,
    get tokens() {
      return tokens
    },
    async login(username: string, password: string) {
      const answer = await api.auth.login.post({ username, password })
      if (answer.data) keepFrom(answer.data)
      return answer
    },
    async register(username: string, password: string) {
      const answer = await api.auth.registrate.post({ username, password })
      if (answer.data) keepFrom(answer.data)
      return answer
    },
    async logout() {
      const answer = await api.auth.logout.post()
      keep(undefined)
      return answer
    },
    refresh,
    async finishSignIn(provider, callback) {
      const answer = await api.auth.oauth({ provider }).callback.post(callback)
      if (answer.data) keepFrom(answer.data)
      return answer
    },
    async startQrLogin() {
      // The private keys cannot be exported: only this page can sign with the one and open its tokens with the other.
      const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
      const sealing = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits'])) as CryptoKeyPair
      const publicJwk = async (key: CryptoKey) => {
        const { x, y } = await crypto.subtle.exportKey('jwk', key)
        return { kty: 'EC' as const, crv: 'P-256' as const, x: x ?? '', y: y ?? '' }
      }
      const started = await api.auth.qr.post({ public_key: await publicJwk(keys.publicKey), encryption_key: await publicJwk(sealing.publicKey) })
      if (!started.data) throw new Error(`the service refused to start a QR login (${started.status})`)
      const { request_id, code, link, qr_svg, verification_words, expires_in, interval } = started.data
      const expiresAt = new Date(Date.now() + expires_in * 1000)
      const signed = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, new TextEncoder().encode(`qr-login:${request_id}`))
      const signature = base64url(new Uint8Array(signed))
      const cancelled = new AbortController()
      const outcome = (async () => {
        while (!cancelled.signal.aborted && Date.now() < expiresAt.getTime()) {
          const asked = Date.now()
          const answer = await api.auth.qr.token.post({ request_id, signature }, { fetch: { signal: cancelled.signal } }).catch(() => undefined)
          if (answer?.data) {
            keepFrom(await unseal<TokenAnswer>(answer.data, sealing, request_id))
            return 'logged_in'
          }
          const code = (answer?.error?.value as { error?: string } | undefined)?.error
          if (code === 'access_denied') return 'denied'
          if (code === 'expired_token' || code === 'invalid_proof') return 'expired'
          // Pending after the server's wait, or asked too soon, or no answer: ask again once the interval has passed.
          await sleep(Math.max(0, interval * 1000 - (Date.now() - asked)), cancelled.signal)
        }
        return 'expired'
      })()
      return { qrSvg: qr_svg, link, code, verificationWords: verification_words, expiresAt, outcome, cancel: () => cancelled.abort() }
    },
    realtime: (realtimeOptions) =>
      new RealtimeConnection({
        ...realtimeOptions,
        baseUrl,
        token: async (fresh) => {
          if (fresh) await refresh()
          return tokens?.access
        },
      }),
  }
}

/** Login, registration and refresh answer 401 for wrong credentials: nothing to refresh there. */
function isTokenRoute(input: FetchInput): boolean {
  const url = input instanceof Request ? input.url : String(input)
  return /\/auth\/(login|registrate|refresh)(\?|$)/.test(url)
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true })
  })
}
