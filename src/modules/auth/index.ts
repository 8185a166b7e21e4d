import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { callerOf } from '../../lib/client-address'
import type { authGuard } from '../../plugins/auth'
import { rateLimit } from '../../plugins/rate-limit'
import { errors, success } from '../../shared/model'
import type { User } from '../users/model'
import { authModels } from './model'
import type { Grant } from './service'

type Guard = ReturnType<typeof authGuard>

// A function, not a shared object: Elysia writes into the hook object of each route it is given.
const verifyTokenOptions = () =>
  ({
    auth: 'user',
    response: { 200: 'SuccessResponse', ...errors(401, 403) },
    detail: { summary: 'For a reverse proxy: 200 with X-User-Id and X-User-Role when the token is good' },
  }) as const

function verifiedToken(user: User, headers: Record<string, unknown>) {
  headers['x-user-id'] = user.user_id
  headers['x-user-role'] = user.user_role
  return success('Token is valid')
}

type SignAccessToken = (claims: Record<string, string | number>) => Promise<string>

export const authRoutes = ({ auth, config }: AppContext, guard: Guard) => {
  /** The TokenResponse of registration, login and refresh: signs the access token for the grant. */
  const tokenResponse = async (sign: SignAccessToken, message: string, grant: Grant) => ({
    ...success(message),
    access_token: {
      token: await sign({
        sub: grant.user.user_id,
        sid: grant.sessionId,
        jti: crypto.randomUUID(),
        exp: Math.floor(Date.now() / 1000) + config.accessTokenTtl,
      }),
      token_type: 'bearer' as const,
      expires_in: config.accessTokenTtl,
    },
    refresh_token: { token: grant.refreshToken, token_type: 'refresh' as const, expires_in: grant.refreshTokenExpiresIn },
    user: grant.user,
  })

  return new Elysia({ prefix: '/auth', detail: { tags: ['auth'] } })
    .use(guard)
    .use(rateLimit(config.authRateLimit, config.trustProxy))
    .use(authModels)
    .post(
      '/registrate',
      async ({ body, accessJwt, set, request, server }) => {
        set.status = 201
        return tokenResponse(accessJwt.sign, 'Registered', await auth.register(body.username, body.password, callerOf(request, server, config.trustProxy)))
      },
      {
        rateLimited: true,
        body: 'AuthRequest',
        parse: 'json',
        response: { 201: 'TokenResponse', ...errors(400, 409, 413, 415, 422) },
        detail: { summary: 'Create an account and open a session' },
      },
    )
    .post(
      '/login',
      async ({ body, accessJwt, request, server }) =>
        tokenResponse(accessJwt.sign, 'Logged in', await auth.login(body.username, body.password, callerOf(request, server, config.trustProxy))),
      {
        rateLimited: true,
        body: 'AuthRequest',
        parse: 'json',
        response: { 200: 'TokenResponse', ...errors(400, 401, 403, 413, 415, 422, 429) },
        detail: { summary: 'Log in with username and password' },
      },
    )
    .post(
      '/refresh',
      async ({ body, accessJwt }) => {
        const token = typeof body.refresh_token === 'string' ? body.refresh_token : body.refresh_token.token
        return tokenResponse(accessJwt.sign, 'Tokens refreshed', await auth.refresh(token))
      },
      {
        rateLimited: true,
        body: 'RefreshTokenRequest',
        parse: 'json',
        response: { 200: 'TokenResponse', ...errors(400, 401, 413, 415, 422) },
        detail: { summary: 'Trade a refresh token for a new token pair (the old refresh token is spent)' },
      },
    )
    .post(
      '/logout',
      async ({ sessionId }) => {
        await auth.logout(sessionId)
        return success('Logged out')
      },
      { auth: 'user', response: { 200: 'SuccessResponse', ...errors(401, 403) }, detail: { summary: 'End this session' } },
    )
    .get('/me', ({ user }) => user, {
      auth: 'user',
      response: { 200: 'User', ...errors(401, 403) },
      detail: { summary: 'The caller' },
    })
    .get('/verify-token', ({ user, set }) => verifiedToken(user, set.headers), verifyTokenOptions())
    .post('/verify-token', ({ user, set }) => verifiedToken(user, set.headers), verifyTokenOptions())
    .post(
      '/change-password',
      async ({ user, sessionId, body, request, server }) => {
        await auth.changePassword(user, sessionId, body.current_password, body.new_password, callerOf(request, server, config.trustProxy))
        return success('Password changed; other sessions have been logged out')
      },
      {
        auth: 'user',
        body: 'ChangePasswordRequest',
        parse: 'json',
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 413, 415, 422) },
        detail: { summary: 'Change password (needs the current one); ends every other session' },
      },
    )
}
