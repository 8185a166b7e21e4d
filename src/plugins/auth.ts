import { Elysia } from 'elysia'
import { forbidden, unauthorized } from '../shared/errors'

export type Role = 'user' | 'admin'

// A type alias, not an interface: Elysia wants a resolved value assignable to Record<string, unknown>.
export type Principal<Account> = { user: Account; sessionId: string }

/** What the guard asks of the sessions domain (wired in app.ts). */
export interface Authenticator<Account extends { user_role: string }> {
  /** The claims of a valid access token; undefined for any other. */
  verify(token: string): Promise<{ sub: string; sid: string } | undefined>
  /** The account behind a live session; throws the 401 or 403 to answer otherwise. */
  authenticate(sessionId: string, userId: string): Promise<Account>
}

/**
 * The `auth` macro. `{ auth: 'user' }` lets any live session of an active account through,
 * `{ auth: 'admin' }` only admins; both resolve `user` (read from the store on every request, so
 * logout, deactivation and role changes bite at once) and `sessionId`.
 *
 * The check runs in `transform`, before validation, so a caller without a valid token learns
 * nothing about a route's input rules: it gets 401 (or 403), never 422.
 */
export const authGuard = <Account extends { user_role: string }>(sessions: Authenticator<Account>) => {
  const principals = new WeakMap<Request, Principal<Account>>()
  return new Elysia({ name: 'auth-guard' }).macro({
    auth: (role: Role) => ({
      detail: { security: [{ bearerAuth: [] }] },
      async transform({ request }) {
        const claims = await accessClaims(request, sessions.verify)
        if (!claims) throw unauthorized('A valid access token is required')
        // The session is read on every request: the verifier's memory spares the signature check, never this.
        const user = await sessions.authenticate(claims.sid, claims.sub)
        if (role === 'admin' && user.user_role !== 'admin') throw forbidden('admin_only', 'Admins only')
        principals.set(request, { user, sessionId: claims.sid })
      },
      resolve: ({ request }): Principal<Account> => {
        const principal = principals.get(request)
        if (!principal) throw new Error('auth transform did not run before resolve')
        return principal
      },
    }),
  })
}

export type AuthGuard<Account extends { user_role: string }> = ReturnType<typeof authGuard<Account>>

/** The claims of the request's valid access token, if it carries one: what the guard checks first, and the upload policy before a form is read. */
export async function accessClaims<Claims>(request: Request, verify: (token: string) => Promise<Claims | undefined>): Promise<Claims | undefined> {
  const token = bearerToken(request)
  return token === undefined ? undefined : verify(token)
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
