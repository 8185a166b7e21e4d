import { jwt } from '@elysiajs/jwt'
import { Elysia } from 'elysia'
import type { Config } from '../config'
import type { AuthService } from '../modules/auth/service'
import type { User } from '../modules/users/model'
import { forbidden, unauthorized } from '../shared/errors'

export type Role = 'user' | 'admin'

/** How far ahead of this clock another instance's may be: a token issued later than that is forged or broken. */
const CLOCK_SKEW_SECONDS = 60

// A type alias, not an interface: Elysia wants a resolved value assignable to Record<string, unknown>.
export type Principal = { user: User; sessionId: string }

/**
 * Access tokens and the `auth` macro. `{ auth: 'user' }` lets any live session of an active account
 * through, `{ auth: 'admin' }` only admins; both resolve `user` (read from the store on every
 * request, so logout, deactivation and role changes bite at once) and `sessionId`.
 *
 * The check runs in `transform`, before validation, so a caller without a valid token learns
 * nothing about a route's input rules: it gets 401 (or 403), never 400 or 422.
 */
export const authGuard = (config: Config['jwt'] & { secret: string }, auth: AuthService) => {
  const verifyOptions = {
    algorithms: [config.algorithm],
    issuer: config.issuer,
    audience: config.audience,
    requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
  }
  const principals = new WeakMap<Request, Principal>()
  const verified = new VerifiedTokens()
  return new Elysia({ name: 'auth-guard' })
    .use(jwt({ name: 'accessJwt', secret: config.secret, alg: config.algorithm, iss: config.issuer, aud: config.audience }))
    .macro({
      auth: (role: Role) => ({
        detail: { security: [{ bearerAuth: [] }] },
        async transform({ accessJwt, request }) {
          const token = bearerToken(request)
          let claims = token ? verified.get(token) : undefined
          if (token && !claims) {
            const payload = await accessJwt.verify(token, verifyOptions)
            if (
              payload &&
              typeof payload.sub === 'string' &&
              typeof payload.sid === 'string' &&
              typeof payload.exp === 'number' &&
              typeof payload.iat === 'number' &&
              payload.iat <= Date.now() / 1000 + CLOCK_SKEW_SECONDS
            )
              claims = verified.add(token, { sub: payload.sub, sid: payload.sid, exp: payload.exp })
          }
          if (!claims) throw unauthorized('A valid access token is required')
          // The session is read on every request: the cache spares the signature check, never this.
          const user = await auth.authenticate(claims.sid, claims.sub)
          if (role === 'admin' && user.user_role !== 'admin') throw forbidden('Admins only')
          principals.set(request, { user, sessionId: claims.sid })
        },
        resolve: ({ request }): Principal => {
          const principal = principals.get(request)
          if (!principal) throw new Error('auth transform did not run before resolve')
          return principal
        },
      }),
    })
}

/**
 * The token of an `Authorization: Bearer <token>` header; the scheme in any case (RFC 7235).
 * Only the header: a token in the query string would end up in the logs of every proxy on the way.
 */
function bearerToken(request: Request): string | undefined {
  const header = request.headers.get('authorization')
  if (header === null || header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined
  return header.slice(7).trim() || undefined
}

interface VerifiedClaims {
  sub: string
  sid: string
  /** Seconds since the epoch. */
  exp: number
}

/**
 * Tokens whose signature and claims were already checked, until they expire: a client sends the same
 * token many times, and checking it through jose costs more than the rest of a small request.
 * Bounded; the oldest entries go first.
 */
class VerifiedTokens {
  static readonly #LIMIT = 10_000
  readonly #claims = new Map<string, VerifiedClaims>()

  get(token: string): VerifiedClaims | undefined {
    const claims = this.#claims.get(token)
    if (claims && claims.exp * 1000 <= Date.now()) {
      this.#claims.delete(token)
      return undefined
    }
    return claims
  }

  add(token: string, claims: VerifiedClaims): VerifiedClaims {
    if (this.#claims.size >= VerifiedTokens.#LIMIT) this.#claims.delete(this.#claims.keys().next().value as string)
    this.#claims.set(token, claims)
    return claims
  }
}
