import { Elysia } from 'elysia'
import { answers, errors, listAnswer, success } from '../../shared/model'
import type { LinkedAccountService } from './linked-accounts'
import { type LinkedAccount, LinkedAccountParams, UserIdParams, UserLinkedAccountParams, usersModels, type UserGuard } from './model'

const CONFLICTS = answers({
  409: '`conflict`: an account on that network is linked already (`already_linked`), that account is linked to another user (`link_taken`), or the user is deleted (`user_deleted`).',
})
const SELF_LIMIT = answers({ 429: '`rate_limited`: you changed your account ACCOUNT_RATE_LIMIT times within USER_RATE_WINDOW.' })

/** Linked accounts: the user's own under /users/me/linked-accounts, anyone's for admins under /users/{user_id}/linked-accounts. */
export const linkedAccountsRoutes = ({ linkedAccounts }: { linkedAccounts: LinkedAccountService }, guard: UserGuard) =>
  new Elysia({ prefix: '/users', detail: { tags: ['users'] } })
    .use(guard)
    .use(usersModels)
    .get('/me/linked-accounts', async ({ user }) => listed(await linkedAccounts.list(user.user_id)), {
      auth: 'user',
      response: { 200: 'LinkedAccountsResponse', ...errors(401, 403) },
      detail: { summary: 'Your linked accounts', description: 'At most one per network, in the order they were linked.' },
    })
    .post(
      '/me/linked-accounts',
      async ({ user, body, set }) => {
        set.status = 201
        return linkedAccounts.link(user, user.user_id, body)
      },
      {
        auth: 'user',
        body: 'LinkAccountRequest',
        parse: 'json',
        response: { 201: 'LinkedAccount', ...errors(400, 401, 403, 409, 413, 415, 422, 429) },
        detail: {
          summary: 'Link an account on another network',
          description: 'The link must be https, on one of the network’s hosts (see SocialNetwork). Counts against ACCOUNT_RATE_LIMIT.',
          responses: { ...CONFLICTS, ...SELF_LIMIT },
        },
      },
    )
    .guard({ params: LinkedAccountParams }, (own) =>
      own
        .put('/me/linked-accounts/:linked_account_id', ({ user, params, body }) => linkedAccounts.changeReason(user, user.user_id, params.linked_account_id, body.connected_for), {
          auth: 'user',
          body: 'ChangeLinkRequest',
          parse: 'json',
          response: { 200: 'LinkedAccount', ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429) },
          detail: { summary: 'Change why an account is linked', description: 'Only `connected_for` changes; counts against ACCOUNT_RATE_LIMIT.', responses: SELF_LIMIT },
        })
        .delete(
          '/me/linked-accounts/:linked_account_id',
          async ({ user, params }) => {
            await linkedAccounts.unlink(user, user.user_id, params.linked_account_id)
            return success('Unlinked')
          },
          {
            auth: 'user',
            response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409, 429) },
            detail: { summary: 'Unlink an account', description: 'The link is free for another user at once; counts against ACCOUNT_RATE_LIMIT.', responses: SELF_LIMIT },
          },
        ),
    )
    .guard({ params: UserIdParams }, (byId) =>
      byId
        .get('/:user_id/linked-accounts', async ({ params }) => listed(await linkedAccounts.listOf(params.user_id)), {
          auth: 'admin',
          response: { 200: 'LinkedAccountsResponse', ...errors(400, 401, 403, 404) },
          detail: { summary: 'A user’s linked accounts', description: 'Admins only.' },
        })
        .post(
          '/:user_id/linked-accounts',
          async ({ user, params, body, set }) => {
            set.status = 201
            return linkedAccounts.link(user, params.user_id, body)
          },
          {
            auth: 'admin',
            body: 'LinkAccountRequest',
            parse: 'json',
            response: { 201: 'LinkedAccount', ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
            detail: { summary: 'Link an account to a user', description: 'Admins only.', responses: CONFLICTS },
          },
        ),
    )
    .guard({ params: UserLinkedAccountParams }, (byIds) =>
      byIds
        .put('/:user_id/linked-accounts/:linked_account_id', ({ user, params, body }) => linkedAccounts.changeReason(user, params.user_id, params.linked_account_id, body.connected_for), {
          auth: 'admin',
          body: 'ChangeLinkRequest',
          parse: 'json',
          response: { 200: 'LinkedAccount', ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
          detail: { summary: 'Change why a user’s account is linked', description: 'Admins only.' },
        })
        .delete(
          '/:user_id/linked-accounts/:linked_account_id',
          async ({ user, params }) => {
            await linkedAccounts.unlink(user, params.user_id, params.linked_account_id)
            return success('Unlinked')
          },
          { auth: 'admin', response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409) }, detail: { summary: 'Unlink a user’s account', description: 'Admins only.' } },
        ),
    )

const listed = (accounts: LinkedAccount[]) => listAnswer('linked_accounts', accounts, accounts.length)
