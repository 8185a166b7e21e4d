import type { OAuthProviderEntry } from '../../config'
import { ApiError, badGateway, invalidField, unauthorized } from '../../shared/errors'

/** Who the provider says signed in, in the words this service keeps. */
export interface ProviderProfile {
  /** Its stable id for the person: never an email address, which can change hands. */
  subject: string
  login: string | null
  email: string | null
  displayName: string | null
}

/** How a kind of provider is asked and what its answers look like. */
interface Dialect {
  name: string
  authorizeUrl?: string
  tokenUrl?: string
  userinfoUrl?: string
  scope: string
  /** The scheme of the user-info call's Authorization header. */
  tokenScheme: 'OAuth' | 'Bearer'
  /**
   * The profile in the user-info answer; `clientId`, for a provider whose answer names the
   * application its token was issued to (undefined: it names none, and the answer is refused).
   */
  profile(info: Record<string, unknown>): ProviderProfile & { clientId?: unknown }
  /** Whether the user-info answer names the token's application, which must then be us. */
  namesClient: boolean
}

const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null)

const DIALECTS: Record<'yandex' | 'oidc', Dialect> = {
  // https://yandex.ru/dev/id/doc/en/: the answer of login.yandex.ru/info carries the client_id its token was issued to.
  yandex: {
    name: 'Yandex ID',
    authorizeUrl: 'https://oauth.yandex.ru/authorize',
    tokenUrl: 'https://oauth.yandex.ru/token',
    userinfoUrl: 'https://login.yandex.ru/info?format=json',
    scope: 'login:info login:email',
    tokenScheme: 'OAuth',
    profile: (info) => ({
      subject: text(info.id) ?? String(info.id ?? ''),
      login: text(info.login),
      email: text(info.default_email),
      displayName: text(info.display_name) ?? text(info.real_name),
      clientId: info.client_id,
    }),
    namesClient: true,
  },
  oidc: {
    name: 'OpenID Connect',
    scope: 'openid profile email',
    tokenScheme: 'Bearer',
    profile: (info) => ({
      subject: text(info.sub) ?? '',
      login: text(info.preferred_username) ?? text(info.nickname),
      email: info.email_verified === false ? null : text(info.email),
      displayName: text(info.name),
    }),
    namesClient: false,
  },
}

/**
 * One provider of OAUTH_PROVIDERS: the authorization code flow with PKCE (S256) and `state`, the
 * code exchanged with the client secret, and the user-info call. Every call has OAUTH_TIMEOUT; a
 * provider that does not answer, or answers nonsense, is a 502 (nothing is created).
 */
export class OAuthProvider {
  readonly id: string
  readonly name: string
  readonly #dialect: Dialect
  readonly #urls: { authorize: string; token: string; userinfo: string }

  constructor(
    private readonly entry: OAuthProviderEntry,
    private readonly timeoutSeconds: number,
    private readonly send: typeof fetch = fetch,
  ) {
    this.#dialect = DIALECTS[entry.preset ?? 'oidc']
    this.id = entry.id
    this.name = entry.name ?? this.#dialect.name
    const url = (own: string | undefined, preset: string | undefined) => own ?? preset ?? ''
    this.#urls = {
      authorize: url(entry.authorize_url, this.#dialect.authorizeUrl),
      token: url(entry.token_url, this.#dialect.tokenUrl),
      userinfo: url(entry.userinfo_url, this.#dialect.userinfoUrl),
    }
  }

  authorizeUrl(state: string, codeChallenge: string): string {
    const url = new URL(this.#urls.authorize)
    const params = {
      response_type: 'code',
      client_id: this.entry.client_id,
      redirect_uri: this.entry.redirect_uri,
      scope: this.entry.scope ?? this.#dialect.scope,
      state,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
    }
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value)
    return url.href
  }

  /** The person behind an authorization code, as the provider tells it. */
  async profile(code: string, codeVerifier: string): Promise<ProviderProfile> {
    const token = await this.#call(this.#urls.token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: codeVerifier,
        redirect_uri: this.entry.redirect_uri,
        client_id: this.entry.client_id,
        client_secret: this.entry.client_secret,
      }),
    })
    if (token.status === 400) throw invalidField('/code', `${this.name} refused the code: used already, expired, or not from this sign-in`)
    if (token.status === 401) throw badGateway(`${this.name} refused this service's client id or secret: check OAUTH_PROVIDERS`)
    const accessToken = text((await this.#json(token)).access_token)
    if (!accessToken) throw badGateway(`${this.name} answered no access token`)
    const info = await this.#json(
      await this.#call(this.#urls.userinfo, { headers: { authorization: `${this.#dialect.tokenScheme} ${accessToken}`, accept: 'application/json' } }),
    )
    const { clientId, ...profile } = this.#dialect.profile(info)
    // A token issued to another application, passed off as ours, must not sign anyone in.
    if (this.#dialect.namesClient && clientId !== this.entry.client_id)
      throw unauthorized(clientId === undefined ? `${this.name} did not say which application this token was issued to` : `${this.name} issued this token to another application`)
    if (profile.subject === '') throw badGateway(`${this.name} answered no user id`)
    return profile
  }

  async #call(url: string, init: RequestInit): Promise<Response> {
    try {
      const response = await this.send(url, { ...init, signal: AbortSignal.timeout(this.timeoutSeconds * 1000), redirect: 'error' })
      if (response.status >= 500) throw badGateway(`${this.name} is not answering (${response.status}); try again later`)
      return response
    } catch (error) {
      if (error instanceof ApiError) throw error
      throw badGateway(`${this.name} cannot be reached; try again later`)
    }
  }

  async #json(response: Response): Promise<Record<string, unknown>> {
    if (!response.ok) throw badGateway(`${this.name} answered ${response.status}`)
    const body: unknown = await response.json().catch(() => undefined)
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badGateway(`${this.name} answered something other than a JSON object`)
    return body as Record<string, unknown>
  }
}
