import { Elysia } from 'elysia'
import type { Config } from '../../config'
import type { RateLimit } from '../../plugins/rate-limit'
import { answers, errors, success } from '../../shared/model'
import type { User, UserGuard } from '../users/model'
import { sessionModels } from './model'
import { tokenResponse } from './tokens'
import type { SessionService } from './service'
import type { AccessJwt } from './tokens'

const VERIFIED = {
  200: {
    description: "The token is good; the caller's identity is in the headers.",
    headers: {
      'X-User-Id': { description: 'The user_id of the caller.', schema: { type: 'string' as const, format: 'uuid' } },
      'X-User-Role': { description: 'The user_role of the caller.', schema: { type: 'string' as const, enum: ['user', 'admin'] } },
    },
  },
}

// A function, not a shared object: Elysia writes into the hook object of each route it is given.
const verifyTokenOptions = () =>
  ({
    auth: 'user',
    response: { 200: 'SuccessResponse', ...errors(401, 403) },
    detail: {
      summary: 'For a reverse proxy: 200 with X-User-Id and X-User-Role when the token is good',
      description:
        "Made for nginx's auth_request and the like: answers 200 with the caller's id and role in headers while the access token " +
        'is good and its session alive, 401 otherwise. GET and POST do the same. See deploy/nginx/ in the repository.',
      responses: VERIFIED,
    },
  }) as const

function verifiedToken(user: User, headers: Record<string, unknown>) {
  headers['x-user-id'] = user.user_id
  headers['x-user-role'] = user.user_role
  return success('Token is valid')
}

/** Sessions over HTTP: refresh, logout, the caller, and the token check for a reverse proxy. The ways in are credentials/. */
export const sessionsRoutes = ({ sessions, signer, config }: { sessions: SessionService; signer: AccessJwt; config: Config }, guard: UserGuard, authLimit: RateLimit) =>
  new Elysia({ prefix: '/auth', detail: { tags: ['auth'] } })
    .use(guard)
    .use(authLimit)
    .use(sessionModels)
    .post(
      '/refresh',
      async ({ body }) => {
        const token = typeof body.refresh_token === 'string' ? body.refresh_token : body.refresh_token.token
        return tokenResponse(signer, config.accessTokenTtl, 'Tokens refreshed', await sessions.refresh(token))
      },
      {
        rateLimited: true,
        body: 'RefreshTokenRequest',
        parse: 'json',
        response: { 200: 'TokenResponse', ...errors(400, 401, 413, 415, 422, 429) },
        detail: {
          summary: 'Trade a refresh token for a new token pair (the old refresh token is spent)',
          description:
            'Send the `refresh_token` object exactly as login returned it, or its bare token string. Each refresh token works once: ' +
            'presenting a spent one again revokes the whole session. A session ends SESSION_MAX_LIFETIME after its login however often it is refreshed.',
          responses: answers({
            401: '`invalid_refresh_token`: unknown, expired or revoked (the session ended). `refresh_token_reused`: this token was already spent, so the session is now revoked.',
            429: '`rate_limited`: more than AUTH_RATE_LIMIT registrations, logins and refreshes from this address in AUTH_RATE_WINDOW.',
          }),
        },
      },
    )
    .post(
      '/logout',
      async ({ sessionId }) => {
        await sessions.logout(sessionId)
        return success('Logged out')
      },
      {
        auth: 'user',
        response: { 200: 'SuccessResponse', ...errors(401, 403) },
        detail: { summary: 'End this session', description: 'Revokes this session at once, on every instance: its access and refresh tokens stop working.' },
      },
    )
    .get('/me', ({ user }) => user, {
      auth: 'user',
      response: { 200: 'User', ...errors(401, 403) },
      detail: { summary: 'The caller', description: 'The account behind the access token, read from the store on every request.' },
    })
    .get('/verify-token', ({ user, set }) => verifiedToken(user, set.headers), verifyTokenOptions())
    .post('/verify-token', ({ user, set }) => verifiedToken(user, set.headers), verifyTokenOptions())
