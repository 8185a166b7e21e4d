import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { callerOf } from '../../lib/client-address'
import type { authGuard } from '../../plugins/auth'
import { errors, listAnswer, success } from '../../shared/model'
import { UserIdParams, usersModels } from './model'

export const usersRoutes = ({ users, config }: AppContext, guard: ReturnType<typeof authGuard>) =>
  new Elysia({ prefix: '/users', detail: { tags: ['users'] } })
    .use(guard)
    .use(usersModels)
    .get('/me', ({ user }) => user, {
      auth: 'user',
      response: { 200: 'User', ...errors(401, 403) },
      detail: { summary: 'The caller' },
    })
    .put('/me', ({ user, body: { user_id, ...changes } }) => users.updateSelf(user, user_id, changes), {
      auth: 'user',
      body: 'ChangeUserRequest',
      parse: 'json',
      response: { 200: 'User', ...errors(400, 401, 403, 409, 413, 415, 422) },
      detail: { summary: 'Rename yourself (role and status: admins only)' },
    })
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
        response: { 201: 'User', ...errors(400, 401, 403, 409, 413, 415, 422) },
        detail: { summary: 'Create a user' },
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
        detail: { summary: 'List users, newest first' },
      },
    )
    .guard({ params: UserIdParams }, (byId) =>
      byId
        .get('/:user_id', ({ params }) => users.get(params.user_id), {
          auth: 'admin',
          response: { 200: 'User', ...errors(400, 401, 403, 404) },
          detail: { summary: 'One user' },
        })
        .put('/:user_id', ({ user, params, body: { user_id, ...changes } }) => users.update(user, params.user_id, user_id, changes), {
          auth: 'admin',
          body: 'ChangeUserRequest',
          parse: 'json',
          response: { 200: 'User', ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
          detail: { summary: 'Change a user' },
        })
        .delete(
          '/:user_id',
          async ({ user, params }) => {
            await users.delete(user, params.user_id)
            return success('User deleted')
          },
          {
            auth: 'admin',
            response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409) },
            detail: { summary: 'Delete a user, their sessions, memberships and pending invitations' },
          },
        )
        .post('/:user_id/deactivate', ({ user, params }) => users.setActive(user, params.user_id, false), {
          auth: 'admin',
          response: { 200: 'User', ...errors(400, 401, 403, 404, 409) },
          detail: { summary: 'Deactivate a user (their sessions end at once)' },
        })
        .post('/:user_id/activate', ({ user, params }) => users.setActive(user, params.user_id, true), {
          auth: 'admin',
          response: { 200: 'User', ...errors(400, 401, 403, 404) },
          detail: { summary: 'Activate a user' },
        }),
    )
