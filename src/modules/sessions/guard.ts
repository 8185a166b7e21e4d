import { Elysia } from 'elysia'
import { forbidden, unauthorized } from '../../shared/errors'
import type { User } from '../users/model'
import type { SessionService } from './service'
import { type AccessTokenVerifier, accessJwt, type JwtConfig } from './tokens'

export type Role = 'user' | 'admin'

// A type alias, not an interface: Elysia wants a resolved value assignable to Record<string, unknown>.
export type Principal = { user: User; sessionId: string }

/**
 * The `auth` macro. `{ auth: 'user' }` lets any live session of an active account through,
 * `{ auth: 'admin' }` only admins; both resolve `user` (read from the store on every request, so
 * logout, deactivation and role changes bite at once) and `sessionId`.
 *
 * The check runs in `transform`, before validation, so a caller without a valid token learns
 * nothing about a route's input rules: it gets 401 (or 403), never 422.
 */
export const authGuard = (config: JwtConfig, verifier: AccessTokenVerifier, sessions: Pick<SessionService, 'authenticate'>) => {
  const principals = new WeakMap<Request, Principal>()
  return new Elysia({ name: 'auth-guard' })
    .use(accessJwt(config))
    .macro({
      auth: (role: Role) => ({
        detail: { security: [{ bearerAuth: [] }] },
        async transform({ accessJwt, request }) {
          const token = bearerToken(request)
          const claims = token === undefined ? undefined : await verifier.verify(accessJwt, token)
          if (!claims) throw unauthorized('A valid access token is required')
          // The session is read on every request: the verifier's memory spares the signature check, never this.
          const user = await sessions.authenticate(claims.sid, claims.sub)
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

export type AuthGuard = ReturnType<typeof authGuard>

/**
 * The token of an `Authorization: Bearer <token>` header; the scheme in any case (RFC 7235).
 * Only the header: a token in the query string would end up in the logs of every proxy on the way.
 */
function bearerToken(request: Request): string | undefined {
  const header = request.headers.get('authorization')
  if (header === null || header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined
  return header.slice(7).trim() || undefined
}
