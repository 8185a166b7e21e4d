import { timingSafeEqual } from 'node:crypto'
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

const HMAC_HASHES = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' } as const

/** The payload of a token whose header and signature are ours (the algorithm pinned), or undefined. */
export type SignatureCheck = (token: string) => Record<string, unknown> | undefined

/**
 * Checks a compact JWS with Bun's own HMAC, as jose's jwtVerify would with the algorithm pinned: a
 * header naming exactly that algorithm and no critical extension, the signature compared in
 * constant time and encoded canonically. jose (through @elysiajs/jwt, which still signs) imports
 * the key again for every token checked: some 20-40 µs each, more than the rest of a websocket's
 * resume.
 */
export function hmacSignatureCheck({ secret, algorithm }: Pick<JwtConfig, 'secret' | 'algorithm'>): SignatureCheck {
  const hash = HMAC_HASHES[algorithm]
  return (token) => {
    const [header, payload, signature, ...rest] = token.split('.')
    if (rest.length > 0 || !header || !payload || !signature) return undefined
    const expected = hmac(hash, secret, `${header}.${payload}`)
    const given = Buffer.from(signature, 'base64url')
    if (given.length !== expected.length || given.toString('base64url') !== signature || !timingSafeEqual(given, expected)) return undefined
    const head = jsonObject(header)
    if (head?.alg !== algorithm || head.crit !== undefined) return undefined
    return jsonObject(payload)
  }
}

/**
 * Bun (1.4.4) leaves the OpenSSL error of a failed WebCrypto import in the thread's queue (a QR
 * login started with a P-256 point off the curve), and the next keyed CryptoHasher throws it, once:
 * the HMAC is then made again.
 */
function hmac(hash: (typeof HMAC_HASHES)[keyof typeof HMAC_HASHES], secret: string, input: string): Buffer {
  try {
    return new Bun.CryptoHasher(hash, secret).update(input).digest()
  } catch {
    return new Bun.CryptoHasher(hash, secret).update(input).digest()
  }
}

function jsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString())
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * Checks access tokens: the signature (hmacSignatureCheck), `iss`, `aud` and every claim required,
 * `nbf` and `exp` against this clock, `iat` not in the future. A client sends the same token many
 * times, so tokens already checked are remembered until they expire (bounded; the oldest go
 * first). Whether the session behind a token is alive is the service's question, asked on every
 * request.
 */
export class AccessTokenVerifier {
  static readonly #LIMIT = 10_000
  readonly #claims = new Map<string, VerifiedClaims>()
  readonly #checking = new Map<string, Promise<VerifiedClaims | undefined>>()
  readonly #issuer: string
  readonly #audience: string

  constructor(
    config: JwtConfig,
    private readonly signatureOf: SignatureCheck = hmacSignatureCheck(config),
  ) {
    this.#issuer = config.issuer
    this.#audience = config.audience
  }

  async verify(token: string): Promise<VerifiedClaims | undefined> {
    const known = this.#claims.get(token)
    if (known && known.exp * 1000 > Date.now()) return known
    if (known) this.#claims.delete(token)
    // Many requests or sockets bringing one token at once share one check.
    let checking = this.#checking.get(token)
    if (!checking) {
      checking = this.#check(token).finally(() => this.#checking.delete(token))
      this.#checking.set(token, checking)
    }
    return checking
  }

  /**
   * Whether a token refused by verify() would have passed but for its expiry: signed with our key,
   * for our issuer and audience, every claim there. A client is then told to refresh it, not to
   * sign in again.
   */
  async expired(token: string): Promise<boolean> {
    const payload = this.signatureOf(token)
    const exp = payload?.exp
    return typeof exp === 'number' && exp * 1000 <= Date.now() && this.#claimsOf(payload!, exp - 1) !== undefined
  }

  async #check(token: string): Promise<VerifiedClaims | undefined> {
    const payload = this.signatureOf(token)
    const claims = payload && this.#claimsOf(payload, Date.now() / 1000)
    if (!claims) return undefined
    if (this.#claims.size >= AccessTokenVerifier.#LIMIT) this.#claims.delete(this.#claims.keys().next().value as string)
    this.#claims.set(token, claims)
    return claims
  }

  /** The claims of a payload valid at `now` (seconds since the epoch), or undefined. */
  #claimsOf({ iss, aud, sub, sid, jti, exp, iat, nbf }: Record<string, unknown>, now: number): VerifiedClaims | undefined {
    const forUs = iss === this.#issuer && (aud === this.#audience || (Array.isArray(aud) && aud.includes(this.#audience)))
    const complete = typeof sub === 'string' && typeof sid === 'string' && typeof jti === 'string' && typeof exp === 'number' && typeof iat === 'number'
    if (!forUs || !complete || exp <= now || iat > now + CLOCK_SKEW_SECONDS) return undefined
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now)) return undefined
    return { sub, sid, exp }
  }
}
