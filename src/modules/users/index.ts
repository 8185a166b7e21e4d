import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { callerOf } from '../../lib/client-address'
import type { Caller } from '../../lib/password'
import { answers, errors, listAnswer, success } from '../../shared/model'
import { DeleteUserQuery, UserIdParams, usersModels, type UserGuard } from './model'
import type { User } from './model'
import type { LinkedAccountService } from './linked-accounts'
import type { UserService } from './service'

/** Checks the caller's own password (the credentials domain does; accounts know no password rules). */
export type PasswordConfirmation = (user: User, password: string, caller: Caller) => Promise<void>

export const usersRoutes = (
  {
    users,
    linkedAccounts,
    config,
    confirmPassword,
  }: { users: UserService; linkedAccounts: Pick<LinkedAccountService, 'withLinks'>; config: Config; confirmPassword: PasswordConfirmation },
  guard: UserGuard,
) =>
  new Elysia({ prefix: '/users', detail: { tags: ['users'] } })
    .use(guard)
    .use(usersModels)
    .get('/me', ({ user }) => linkedAccounts.withLinks(user), {
      auth: 'user',
      response: { 200: 'User', ...errors(401, 403) },
      detail: { summary: 'The caller', description: 'As GET /auth/me, with your linked accounts.' },
    })
    .put('/me', ({ user, body: { user_id, ...changes } }) => users.updateSelf(user, user_id, changes), {
      auth: 'user',
      body: 'ChangeUserRequest',
      parse: 'json',
      response: { 200: 'User', ...errors(400, 401, 403, 409, 413, 415, 422, 429) },
      detail: {
        summary: 'Rename yourself (role and status: admins only)',
        description:
          'Changes only the fields sent. `user_id`, when sent, must be your own id. A change counts against ACCOUNT_RATE_LIMIT; sending what is already there changes nothing and is not counted.',
        responses: answers({
          403: '`forbidden`: only an admin may change user_role or is_active. `account_inactive`: the account is deactivated.',
          409: '`conflict`: the username is taken (`username_taken`) or the email address (`email_taken`); or an admin demoting or deactivating themself (`self_target`).',
          429: '`rate_limited`: you changed your account ACCOUNT_RATE_LIMIT times within USER_RATE_WINDOW.',
        }),
      },
    })
    .delete(
      '/me',
      async ({ user, body, request, server }) => {
        await confirmPassword(user, body.password, callerOf(request, server, config.trustProxy))
        await users.delete(user, user.user_id)
        return success('Your account is deleted')
      },
      {
        auth: 'user',
        body: 'DeleteMeRequest',
        parse: 'json',
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 409, 413, 415, 422, 429, 503) },
        detail: {
          summary: 'Delete your own account',
          description:
            'Needs your password. As an admin deletion: every session ends, you leave your open rooms, your pending invitations are withdrawn; an admin can restore the account until USER_PURGE_AFTER, then it is erased. Download your data first (GET /users/me/export).',
          responses: answers({
            401: '`invalid_credentials`: the password is wrong (counted as a change of password counts: LOGIN_MAX_FAILURES per LOGIN_WINDOW). `unauthorized`: no valid token.',
            409: '`conflict`: an admin cannot delete themself (`self_target`); ask another admin.',
            429: '`rate_limited`: too many wrong passwords; try again after Retry-After.',
          }),
        },
      },
    )
    .post(
      '',
      async ({ body, set, request, server }) => {
        set.status = 201
        return users.create(body, callerOf(request, server, config.trustProxy))
      },
      {
        auth: 'admin',
        body: 'UserCreateRequest',
        parse: 'json',
        response: { 201: 'User', ...errors(400, 401, 403, 409, 413, 415, 422, 429, 503) },
        detail: {
          summary: 'Create a user',
          description: 'Admins only. `user_role` defaults to `user`, `is_active` to true.',
          responses: answers({
            409: '`conflict`: the username is taken, in some case (`username_taken`), or the email address (`email_taken`).',
            429: '`rate_limited`: HASH_QUEUE_PER_CLIENT password checks from this address at once.',
            503: '`unavailable`: password checks are queued full (HASH_QUEUE_LIMIT); try again after Retry-After.',
          }),
        },
      },
    )
    .get(
      '',
      async ({ query }) => {
        const { users: page, total } = await users.list(query)
        return listAnswer('users', page, total)
      },
      {
        auth: 'admin',
        query: 'GetAllUsersRequest',
        response: { 200: 'GetAllUsersResponse', ...errors(401, 403, 422) },
        detail: {
          summary: 'List users, newest first',
          description:
            'Admins only. Filters by status (deleted accounts only with status=deleted), role and a case-insensitive part of the username, email, display name or names; `total_count` counts every match.',
        },
      },
    )
    .guard({ params: UserIdParams }, (byId) =>
      byId
        .get('/:user_id', async ({ params }) => linkedAccounts.withLinks(await users.get(params.user_id)), {
          auth: 'admin',
          response: { 200: 'User', ...errors(400, 401, 403, 404) },
          detail: { summary: 'One user, with their linked accounts', description: 'Admins only.' },
        })
        .put('/:user_id', ({ user, params, body: { user_id, ...changes } }) => users.update(user, params.user_id, user_id, changes), {
          auth: 'admin',
          body: 'ChangeUserRequest',
          parse: 'json',
          response: { 200: 'User', ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
          detail: {
            summary: 'Change a user',
            description: 'Admins only. Changes only the fields sent; a demotion or deactivation bites on the user’s next request.',
            responses: answers({
              409: '`conflict`: the username or the email address is taken (`username_taken`, `email_taken`); an admin demoting or deactivating themself (`self_target`); the last active admin would be lost (`last_admin`); or the account is deleted (`user_deleted`).',
            }),
          },
        })
        .delete(
          '/:user_id',
          async ({ user, params, query }) => {
            if (!query.permanent) {
              await users.delete(user, params.user_id)
              return success('User deleted')
            }
            await users.erase(user, params.user_id)
            return success('User erased')
          },
          {
            auth: 'admin',
            query: DeleteUserQuery,
            response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409, 422) },
            detail: {
              summary: 'Delete a user (restorably), or erase them for good with permanent=true',
              description:
                'Admins only. At once: their sessions end and their sockets close, they leave their open rooms (rooms they owned pass to the earliest-joined player, or close when empty) and their pending invitations are withdrawn; they can no longer log in (403 `account_deleted`). The name and email stay reserved, and POST /users/{user_id}/restore brings the account back, until USER_PURGE_AFTER erases it. `permanent=true` erases it now: profile gone, room messages kept by "a deleted user", conversations gone. Deleting a deleted account again finishes a deletion that was cut short.',
              responses: answers({
                409: '`conflict`: an admin deleting themself (`self_target`), or the last active admin (`last_admin`); or the account was restored while it was being erased (`reactivated_during_deletion`).',
              }),
            },
          },
        )
        .post('/:user_id/restore', ({ params }) => users.restore(params.user_id), {
          auth: 'admin',
          response: { 200: 'User', ...errors(400, 401, 403, 404, 409) },
          detail: {
            summary: 'Restore a deleted user',
            description: 'Admins only. The account comes back active, with its name, profile, messages and conversations; not its sessions (the user logs in again).',
            responses: answers({ 409: '`conflict`: the account is not deleted (`not_deleted`).' }),
          },
        })
        .post('/:user_id/deactivate', ({ user, params }) => users.setActive(user, params.user_id, false), {
          auth: 'admin',
          response: { 200: 'User', ...errors(400, 401, 403, 404, 409) },
          detail: {
            summary: 'Deactivate a user (their sessions end at once)',
            description: 'Admins only. Their sessions are revoked; they can no longer log in (403 account_inactive).',
            responses: answers({ 409: '`conflict`: an admin deactivating themself (`self_target`), the last active admin (`last_admin`), or a deleted account (`user_deleted`).' }),
          },
        })
        .post('/:user_id/activate', ({ user, params }) => users.setActive(user, params.user_id, true), {
          auth: 'admin',
          response: { 200: 'User', ...errors(400, 401, 403, 404, 409) },
          detail: {
            summary: 'Activate a user',
            description: 'Admins only. The user may log in again.',
            responses: answers({ 409: '`conflict`: the account is deleted (`user_deleted`); restore it instead.' }),
          },
        }),
    )
