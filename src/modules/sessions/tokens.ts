import { jwt } from '@elysiajs/jwt'
import type { Config } from '../../config'
import { success } from '../../shared/model'
import type { Grant } from './service'

/**
 * Access tokens, issued and verified side by side: JWTs signed with the configured HMAC algorithm,
 * `iss`, `aud`, `sub` (the user), `sid` (the session), `jti`, `iat`, `exp`. Refresh tokens are
 * opaque and live in the store (service.ts).
 */

export type JwtConfig = Config['jwt'] & { secret: string }

/** The @elysiajs/jwt plugin that signs and verifies, as `accessJwt` in a handler's context. */
export const accessJwt = ({ secret, algorithm, issuer, audience }: JwtConfig) => jwt({ name: 'accessJwt', secret, alg: algorithm, iss: issuer, aud: audience })

/** The signer `accessJwt` gives handlers, for code outside a handler (the websocket hub). */
export const accessTokenSigner = (config: JwtConfig): AccessJwt => accessJwt(config).decorator.accessJwt

/** What `accessJwt` offers a handler. */
export interface AccessJwt {
  sign(claims: Record<string, string | number>): Promise<string>
  verify(token: string, options?: object): Promise<false | Record<string, unknown>>
}

/** The answer of every way in, and of a refresh: `message`, and the token pair of the grant's session. */
export async function tokenResponse(signer: AccessJwt, accessTokenTtl: number, message: string, grant: Grant) {
  return { ...success(message), ...(await tokenPair(signer, grant, accessTokenTtl)) }
}

/** The TokenResponse of registration, login and refresh: the access token signed for the grant's session. */
export async function tokenPair(signer: AccessJwt, grant: Grant, accessTokenTtl: number) {
  const token = await signer.sign({
    sub: grant.user.user_id,
    sid: grant.sessionId,
    jti: crypto.randomUUID(),
    exp: Math.floor(Date.now() / 1000) + accessTokenTtl,
  })
  return {
    access_token: { token, token_type: 'bearer' as const, expires_in: accessTokenTtl },
    refresh_token: { token: grant.refreshToken, token_type: 'refresh' as const, expires_in: grant.refreshTokenExpiresIn },
    user: grant.user,
  }
}

export interface VerifiedClaims {
  sub: string
  sid: string
  /** Seconds since the epoch. */
  exp: number
}

/** How far ahead of this clock another instance's may be: a token issued later than that is forged or broken. */
const CLOCK_SKEW_SECONDS = 60

/**
 * Checks access tokens: the algorithm pinned, `iss`, `aud` and every claim required, `iat` not in
 * the future. A client sends the same token many times, and checking it through jose costs more
 * than the rest of a small request, so tokens already checked are remembered until they expire
 * (bounded; the oldest go first). Whether the session behind a token is alive is the service's
 * question, asked on every request.
 */
export class AccessTokenVerifier {
  static readonly #LIMIT = 10_000
  readonly #claims = new Map<string, VerifiedClaims>()
  readonly #checking = new Map<string, Promise<VerifiedClaims | undefined>>()
  readonly #options: object

  constructor({ algorithm, issuer, audience }: JwtConfig) {
    this.#options = { algorithms: [algorithm], issuer, audience, requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'] }
  }

  async verify(signer: AccessJwt, token: string): Promise<VerifiedClaims | undefined> {
    const known = this.#claims.get(token)
    if (known && known.exp * 1000 > Date.now()) return known
    if (known) this.#claims.delete(token)
    // Many requests or sockets bringing one token at once share one check.
    let checking = this.#checking.get(token)
    if (!checking) {
      checking = this.#check(signer, token).finally(() => this.#checking.delete(token))
      this.#checking.set(token, checking)
    }
    return checking
  }

  /**
   * Whether a token refused by verify() would have passed but for its expiry: signed with our key,
   * for our issuer and audience, every claim there. A client is then told to refresh it, not to
   * sign in again.
   */
  async expired(signer: AccessJwt, token: string): Promise<boolean> {
    let exp: unknown
    try {
      exp = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).exp
    } catch {
      return false
    }
    if (typeof exp !== 'number' || exp * 1000 > Date.now()) return false
    return (await signer.verify(token, { ...this.#options, currentDate: new Date((exp - 1) * 1000) })) !== false
  }

  async #check(signer: AccessJwt, token: string): Promise<VerifiedClaims | undefined> {
    const payload = await signer.verify(token, this.#options)
    if (
      !payload ||
      typeof payload.sub !== 'string' ||
      typeof payload.sid !== 'string' ||
      typeof payload.exp !== 'number' ||
      typeof payload.iat !== 'number' ||
      payload.iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS
    )
      return undefined
    if (this.#claims.size >= AccessTokenVerifier.#LIMIT) this.#claims.delete(this.#claims.keys().next().value as string)
    const claims = { sub: payload.sub, sid: payload.sid, exp: payload.exp }
    this.#claims.set(token, claims)
    return claims
  }
}
