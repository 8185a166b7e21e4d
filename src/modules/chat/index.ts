import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { answers, errors, success } from '../../shared/model'
import type { UserGuard } from '../users/model'
import { RoomIdParams } from '../rooms/model'
import { chatModels, MessageParams } from './model'
import type { ChatService } from './service'

/** Room chat over REST: the history, and writing, editing and deleting messages. The websocket sends too (op: send). */
export const chatRoutes = ({ chat, config }: { chat: ChatService; config: Config }, guard: UserGuard) =>
  new Elysia({ prefix: '/rooms', detail: { tags: ['chat'] } })
    .use(guard)
    .use(chatModels(config.chat.maxLength))
    .get('/:room_id/messages', ({ user, params, query }) => chat.history(user, params.room_id, query), {
      auth: 'user',
      params: RoomIdParams,
      query: 'ChatHistoryRequest',
      response: { 200: 'ChatHistoryResponse', ...errors(401, 403, 404, 422) },
      detail: {
        summary: "A page of the room's chat, newest first (players and admins)",
        description:
          'Without cursors: the newest `limit` messages. `before`: the page before a cursor; `after`: the messages after it (the oldest first taken, shown newest first). Messages keep their place when deleted (empty `body`, `deleted_at`). A closed room stays readable to its players.',
        responses: answers({
          403: '`forbidden`: you see the room (an invitation) but do not play in it.',
          404: '`not_found`: no such room, or one you may not see.',
        }),
      },
    })
    .post(
      '/:room_id/messages',
      async ({ user, params, body, set }) => {
        const { message, created } = await chat.post(user, params.room_id, body.body, body.client_id)
        set.status = created ? 201 : 200
        return message
      },
      {
        auth: 'user',
        params: RoomIdParams,
        body: 'PostMessageRequest',
        parse: 'json',
        response: { 200: 'Message', 201: 'Message', ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503) },
        detail: {
          summary: 'Write in the room (its players)',
          description:
            'Plain text of 1 to MESSAGE_MAX_LENGTH characters. With a `client_id` you used before in this room, answers 200 with that message instead of writing it twice.',
          responses: answers({
            200: 'The message sent earlier with this `client_id`.',
            403: '`forbidden`: you do not play in the room.',
            404: '`not_found`: no such room, or one you may not see.',
            409: '`conflict`: the room is closed.',
            429: '`rate_limited`: you sent MESSAGE_RATE_LIMIT messages within MESSAGE_RATE_WINDOW.',
            503: '`unavailable`: 1,000 messages already wait to be written to this room on this instance; send again after `Retry-After`.',
          }),
        },
      },
    )
    .patch('/:room_id/messages/:message_id', ({ user, params, body }) => chat.edit(user, params.room_id, params.message_id, body.body), {
      auth: 'user',
      params: MessageParams,
      body: 'EditMessageRequest',
      parse: 'json',
      response: { 200: 'Message', ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429) },
      detail: {
        summary: 'Edit your message',
        description: 'Only its author, while playing in the open room, at most 50 times. An edit counts against MESSAGE_RATE_LIMIT as a message does.',
        responses: answers({
          403: '`forbidden`: it is not your message, or you do not play in the room.',
          404: '`not_found`: no such room or message.',
          409: '`conflict`: the room is closed, the message was deleted, or it was edited 50 times already.',
          429: '`rate_limited`: you sent, edited or deleted MESSAGE_RATE_LIMIT messages within MESSAGE_RATE_WINDOW.',
        }),
      },
    })
    .delete(
      '/:room_id/messages/:message_id',
      async ({ user, params }) => {
        await chat.delete(user, params.room_id, params.message_id)
        return success('Message deleted')
      },
      {
        auth: 'user',
        params: MessageParams,
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 429) },
        detail: {
          summary: 'Delete a message (its author, the room owner, or an admin)',
          description:
            'It keeps its place in the history with an empty body, and its text is blanked in the events that carried it. A deletion counts against MESSAGE_RATE_LIMIT as a message does; deleting it again answers the same and costs nothing.',
          responses: answers({
            403: '`forbidden`: not your message, and you are neither the owner nor an admin.',
            404: '`not_found`: no such room or message.',
            429: '`rate_limited`: you sent, edited or deleted MESSAGE_RATE_LIMIT messages within MESSAGE_RATE_WINDOW.',
          }),
        },
      },
    )
