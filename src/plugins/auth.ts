import { bearer } from '@elysiajs/bearer'
import { jwt } from '@elysiajs/jwt'
import { Elysia } from 'elysia'
import type { Config } from '../config'
import type { AuthService } from '../modules/auth/service'
import type { User } from '../modules/users/model'
import { ApiError } from './errors'

export type Role = 'user' | 'admin'

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
  return new Elysia({ name: 'auth-guard' })
    .use(bearer())
    .use(jwt({ name: 'accessJwt', secret: config.secret, alg: config.algorithm, iss: config.issuer, aud: config.audience }))
    .macro({
      auth: (role: Role) => ({
        detail: { security: [{ bearerAuth: [] }] },
        async transform({ bearer: token, accessJwt, request }) {
          const claims = token ? await accessJwt.verify(token, verifyOptions) : false
          if (!claims || typeof claims.sub !== 'string' || typeof claims.sid !== 'string')
            throw new ApiError(401, 'unauthorized', 'A valid access token is required')
          const user = await auth.authenticate(claims.sid, claims.sub)
          if (role === 'admin' && user.user_role !== 'admin') throw new ApiError(403, 'forbidden', 'Admins only')
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
