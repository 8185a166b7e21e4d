import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { callerOf } from '../../lib/client-address'
import type { RateLimit } from '../../plugins/rate-limit'
import { answers, errors, success } from '../../shared/model'
import type { UserGuard } from '../users/model'
import { tokenResponse } from '../sessions/tokens'
import { credentialModels } from './model'
import type { PasswordCredentials } from './password'
import type { AccessJwt } from '../sessions/tokens'

/** The ways in over HTTP: a password today (registration, login, change of password); each opens an ordinary session. */
export const credentialsRoutes = ({ credentials, signer, config }: { credentials: { password: PasswordCredentials }; signer: AccessJwt; config: Config }, guard: UserGuard, authLimit: RateLimit) => {
  const caller = (request: Request, server: Server<unknown> | null) => callerOf(request, server, config.trustProxy)
  return new Elysia({ prefix: '/auth', detail: { tags: ['auth'] } })
    .use(guard)
    .use(authLimit)
    .use(credentialModels)
    .post(
      '/registrate',
      async ({ body, set, request, server }) => {
        set.status = 201
        return tokenResponse(signer, config.accessTokenTtl, 'Registered', await credentials.password.register(body, caller(request, server)))
      },
      {
        rateLimited: true,
        body: 'RegisterRequest',
        parse: 'json',
        response: { 201: 'TokenResponse', ...errors(400, 409, 413, 415, 422, 429, 503) },
        detail: {
          summary: 'Create an account and open a session',
          description:
            'Creates an active `user` account and logs it in: the answer carries an access token, a refresh token and the user. ' +
            'Usernames are 3..32 of A-Z a-z 0-9 _ . - and unique ignoring case; passwords 8..128 characters of anything. ' +
            'The profile fields are optional (as in PUT /users/me); AuthRequest alone is a valid body.',
          responses: answers({
            409: '`conflict`: the username is taken, in some case (`username_taken`), or the email address (`email_taken`).',
            429: '`rate_limited`: more than AUTH_RATE_LIMIT registrations, logins and refreshes from this address in AUTH_RATE_WINDOW, or HASH_QUEUE_PER_CLIENT password checks from it at once.',
            503: '`unavailable`: password checks are queued full (HASH_QUEUE_LIMIT); try again after Retry-After.',
          }),
        },
      },
    )
    .post(
      '/login',
      async ({ body, request, server }) =>
        tokenResponse(signer, config.accessTokenTtl, 'Logged in', await credentials.password.login(body.username, body.password, caller(request, server))),
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
            403: '`account_inactive`: the password is right, but the account is deactivated. `account_deleted`: it is deleted (an admin can restore it).',
            429: '`rate_limited`: a lock-out after too many failed logins for this username or from this address, or too many requests from this address.',
            503: '`unavailable`: password checks are queued full (HASH_QUEUE_LIMIT); try again after Retry-After.',
          }),
        },
      },
    )
    .post(
      '/change-password',
      async ({ user, sessionId, body, request, server }) => {
        await credentials.password.change(user, sessionId, body.current_password, body.new_password, caller(request, server))
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
