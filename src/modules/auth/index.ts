import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { callerOf } from '../../lib/client-address'
import { rateLimit } from '../../plugins/rate-limit'
import { answers, errors, success } from '../../shared/model'
import type { User } from '../users/model'
import { authModels } from './model'
import type { AuthGuard } from './guard'
import type { Grant } from './service'
import { type AccessJwt, tokenPair } from './tokens'

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

export const authRoutes = ({ auth, config }: AppContext, guard: AuthGuard) => {
  const tokenResponse = async (signer: AccessJwt, message: string, grant: Grant) => ({
    ...success(message),
    ...(await tokenPair(signer, grant, config.accessTokenTtl)),
  })
  const caller = (request: Request, server: Server<unknown> | null) => callerOf(request, server, config.trustProxy)
  return new Elysia({ prefix: '/auth', detail: { tags: ['auth'] } })
    .use(guard)
    .use(rateLimit(config.authRateLimit, config.trustProxy))
    .use(authModels)
    .post(
      '/registrate',
      async ({ body, accessJwt, set, request, server }) => {
        set.status = 201
        return tokenResponse(accessJwt, 'Registered', await auth.register(body.username, body.password, caller(request, server)))
      },
      {
        rateLimited: true,
        body: 'AuthRequest',
        parse: 'json',
        response: { 201: 'TokenResponse', ...errors(400, 409, 413, 415, 422, 429, 503) },
        detail: {
          summary: 'Create an account and open a session',
          description:
            'Creates an active `user` account and logs it in: the answer carries an access token, a refresh token and the user. ' +
            'Usernames are 3..32 of A-Z a-z 0-9 _ . - and unique ignoring case; passwords 8..128 characters of anything.',
          responses: answers({
            409: '`conflict`: the username is taken, in some case.',
            429: '`rate_limited`: more than AUTH_RATE_LIMIT registrations, logins and refreshes from this address in AUTH_RATE_WINDOW, or HASH_QUEUE_PER_CLIENT password checks from it at once.',
            503: '`unavailable`: password checks are queued full (HASH_QUEUE_LIMIT); try again after Retry-After.',
          }),
        },
      },
    )
    .post(
      '/login',
      async ({ body, accessJwt, request, server }) =>
        tokenResponse(accessJwt, 'Logged in', await auth.login(body.username, body.password, caller(request, server))),
      {
        rateLimited: true,
        body: 'AuthRequest',
        parse: 'json',
        response: { 200: 'TokenResponse', ...errors(400, 401, 403, 413, 415, 422, 429, 503) },
        detail: {
          summary: 'Log in with username and password',
          description:
            'Opens a session. Send the access token as `Authorization: Bearer <token>`; trade the refresh token at POST /auth/refresh ' +
            'before the access token expires. After LOGIN_MAX_FAILURES wrong passwords for a username (or LOGIN_MAX_FAILURES_PER_ADDRESS ' +
            'from an address) within LOGIN_WINDOW, logins wait out the lock-out, even with the right password.',
          responses: answers({
            401: '`invalid_credentials`: wrong username or password (the same answer, after the same work, for a username that does not exist).',
            403: '`account_inactive`: the password is right, but the account is deactivated.',
            429: '`rate_limited`: a lock-out after too many failed logins for this username or from this address, or too many requests from this address.',
            503: '`unavailable`: password checks are queued full (HASH_QUEUE_LIMIT); try again after Retry-After.',
          }),
        },
      },
    )
    .post(
      '/refresh',
      async ({ body, accessJwt }) => {
        const token = typeof body.refresh_token === 'string' ? body.refresh_token : body.refresh_token.token
        return tokenResponse(accessJwt, 'Tokens refreshed', await auth.refresh(token))
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
        await auth.logout(sessionId)
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
    .post(
      '/change-password',
      async ({ user, sessionId, body, request, server }) => {
        await auth.changePassword(user, sessionId, body.current_password, body.new_password, caller(request, server))
        return success('Password changed; other sessions have been logged out')
      },
      {
        auth: 'user',
        rateLimited: true,
        body: 'ChangePasswordRequest',
        parse: 'json',
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 413, 415, 422, 429, 503) },
        detail: {
          summary: 'Change password (needs the current one); ends every other session',
          description: 'Needs the current password. Every other session of the account is revoked; this one goes on.',
          responses: answers({
            401: '`invalid_credentials`: the current password is wrong. `unauthorized`: the access token is refused.',
            422: '`validation_error`: new_password is outside 8..128 characters or shorter than PASSWORD_MIN_LENGTH.',
            429: '`rate_limited`: LOGIN_MAX_FAILURES wrong current passwords within LOGIN_WINDOW (until it passes, even the right one waits), or more than AUTH_RATE_LIMIT auth requests from this address.',
            503: '`unavailable`: password checks are queued full (HASH_QUEUE_LIMIT); try again after Retry-After.',
          }),
        },
      },
    )
}
