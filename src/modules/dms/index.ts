import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { answers, errors, listAnswer, success } from '../../shared/model'
import type { UserGuard } from '../users/model'
import { dmsModels, PeerParams } from './model'
import type { DirectMessageService } from './service'

/** Direct messages: conversations, history, writing, read markers; and blocks. */
export const dmsRoutes = ({ dms, config }: { dms: DirectMessageService; config: Config }, guard: UserGuard) =>
  new Elysia({ detail: { tags: ['dms'] } })
    .use(guard)
    .use(dmsModels(config.chat.maxLength))
    .get(
      '/dms',
      async ({ user, query }) => {
        const { conversations, total } = await dms.list(user, query)
        return listAnswer('conversations', conversations, total)
      },
      {
        auth: 'user',
        query: 'ConversationsRequest',
        response: { 200: 'ConversationsResponse', ...errors(401, 403, 422) },
        detail: {
          summary: 'Your conversations, latest first',
          description: 'Each with the other person, the last message, and how many of theirs you have not read.',
        },
      },
    )
    .get('/dms/:user_id/messages', ({ user, params, query }) => dms.history(user, params.user_id, query), {
      auth: 'user',
      params: PeerParams,
      query: 'DirectHistoryRequest',
      response: { 200: 'DirectHistoryResponse', ...errors(401, 403, 422) },
      detail: {
        summary: 'A page of your conversation with a user, newest first',
        description: 'Cursors as for room chat: `before` for older pages, `after` for newer. No conversation yet: an empty page.',
      },
    })
    .post(
      '/dms/:user_id/messages',
      async ({ user, params, body, set }) => {
        const { message, created } = await dms.send(user, params.user_id, body.body, body.client_id)
        set.status = created ? 201 : 200
        return message
      },
      {
        auth: 'user',
        params: PeerParams,
        body: 'PostDirectMessageRequest',
        parse: 'json',
        response: { 200: 'DirectMessage', 201: 'DirectMessage', ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429) },
        detail: {
          summary: 'Write to a user (the first message starts the conversation)',
          description: 'Plain text of 1 to MESSAGE_MAX_LENGTH characters; a `client_id` used before answers 200 with that message.',
          responses: answers({
            200: 'The message sent earlier with this `client_id`.',
            403: '`forbidden`: this user blocked you.',
            404: '`not_found`: no active user with this id.',
            409: '`conflict`: you blocked this user, or wrote to yourself.',
            429: '`rate_limited`: you sent MESSAGE_RATE_LIMIT messages within MESSAGE_RATE_WINDOW.',
          }),
        },
      },
    )
    .post('/dms/:user_id/read', ({ user, params, body }) => dms.markRead(user, params.user_id, body.last_read_seq), {
      auth: 'user',
      params: PeerParams,
      body: 'ReadMarkerRequest',
      parse: 'json',
      response: { 200: 'ReadMarkerRequest', ...errors(400, 401, 403, 404, 413, 415, 422) },
      detail: {
        summary: 'Mark the conversation read up to a message',
        description: 'The marker only moves forward, and not past the last message; the answer is where it stands.',
        responses: answers({ 404: '`not_found`: you have no conversation with this user.' }),
      },
    })
    .get(
      '/blocks',
      async ({ user, query }) => {
        const { blocked, total } = await dms.blocked(user, query)
        return listAnswer('blocked', blocked, total)
      },
      {
        auth: 'user',
        query: 'BlocksRequest',
        response: { 200: 'BlocksResponse', ...errors(401, 403, 422) },
        detail: { summary: 'The users you blocked', description: 'Newest first, a page at a time.' },
      },
    )
    .put(
      '/blocks/:user_id',
      async ({ user, params }) => {
        await dms.block(user, params.user_id)
        return success('User blocked')
      },
      {
        auth: 'user',
        params: PeerParams,
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409, 429) },
        detail: {
          summary: 'Block a user: no direct messages or read receipts between you',
          description: 'Blocking twice is the same as once, and the second costs nothing.',
          responses: answers({
            404: '`not_found`: no active user with this id.',
            409: '`conflict`: you cannot block yourself, or you have blocked BLOCK_QUOTA users already.',
            429: '`rate_limited`: you blocked or unblocked BLOCK_RATE_LIMIT times within USER_RATE_WINDOW.',
          }),
        },
      },
    )
    .delete(
      '/blocks/:user_id',
      async ({ user, params }) => {
        await dms.unblock(user, params.user_id)
        return success('User unblocked')
      },
      {
        auth: 'user',
        params: PeerParams,
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 429) },
        detail: {
          summary: 'Unblock a user',
          description: 'Unblocking someone not blocked changes nothing and costs nothing.',
          responses: answers({ 429: '`rate_limited`: you blocked or unblocked BLOCK_RATE_LIMIT times within USER_RATE_WINDOW.' }),
        },
      },
    )
