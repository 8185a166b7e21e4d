import { bearer } from '@elysiajs/bearer'
import { jwt } from '@elysiajs/jwt'
import { Elysia } from 'elysia'
import type { Config } from '../config'
import type { AuthService } from '../modules/auth/service'
import type { User } from '../modules/users/model'
import { ApiError } from './errors'

export type Role = 'user' | 'admin'

export interface AccessClaims {
  sub: string
  sid: string
}

/**
 * Access tokens and the `auth` macro. `{ auth: 'user' }` lets any live session of an active account
 * through, `{ auth: 'admin' }` only admins; both resolve `user` (read from the store on every
 * request, so logout, deactivation and role changes bite at once) and `sessionId`.
 */
export const authGuard = (config: Config['jwt'] & { secret: string }, auth: AuthService) => {
  const verifyOptions = {
    algorithms: [config.algorithm],
    issuer: config.issuer,
    audience: config.audience,
    requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
  }
  return new Elysia({ name: 'auth-guard' })
    .use(bearer())
    .use(jwt({ name: 'accessJwt', secret: config.secret, alg: config.algorithm, iss: config.issuer, aud: config.audience }))
    .macro({
      auth: (role: Role) => ({
        detail: { security: [{ bearerAuth: [] }] },
        async resolve({ bearer: token, accessJwt }): Promise<{ user: User; sessionId: string }> {
          const claims = token ? await accessJwt.verify(token, verifyOptions) : false
          if (!claims || typeof claims.sub !== 'string' || typeof claims.sid !== 'string')
            throw new ApiError(401, 'unauthorized', 'A valid access token is required')
          const user = await auth.authenticate(claims.sid, claims.sub)
          if (role === 'admin' && user.user_role !== 'admin') throw new ApiError(403, 'forbidden', 'Admins only')
          return { user, sessionId: claims.sid }
        },
      }),
    })
}
