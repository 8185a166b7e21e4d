import { Type } from '@sinclair/typebox'
import { Elysia, t } from 'elysia'
import { ClientId, Cursor, HistoryQuery } from '../../shared/history'
import { DEMO_IDS } from '../../shared/demo'
import { componentId, DemoId, sharedModels, Text, Timestamp, Uuid } from '../../shared/model'

export const Message = t.Object(
  {
    message_id: Uuid,
    room_id: Uuid,
    // TypeBox's integer: Elysia's t.Integer would accept (and document) numeric strings too.
    seq: Type.Integer({ minimum: 1, description: "its number in the room's chat stream (GET /realtime)" }),
    author_id: t.Union([Uuid, t.Null()], { description: 'null when the account was deleted' }),
    author_name: t.Union([t.String(), t.Null()]),
    body: t.String({ description: 'empty once deleted', examples: ['Boiler two is warm, start the pumps'] }),
    client_id: t.Union([ClientId, t.Null()]),
    created_at: Timestamp,
    edited_at: t.Union([Timestamp, t.Null()]),
    deleted_at: t.Union([Timestamp, t.Null()]),
  },
  { $id: componentId('Message') },
)

export const ChatHistoryRequest = t.Object(HistoryQuery, { additionalProperties: false, $id: componentId('ChatHistoryRequest') })

export const ChatHistoryResponse = t.Object(
  {
    messages: t.Array(Message, { description: 'newest first' }),
    older: t.Union([Cursor, t.Null()], { description: 'pass as `before` for the page before this one; null at the start' }),
    newer: t.Union([Cursor, t.Null()], { description: 'pass as `after` for what came after this page; null when nothing newer is known' }),
  },
  { $id: componentId('ChatHistoryResponse') },
)

export const MessageParams = t.Object({ room_id: DemoId(DEMO_IDS.rooms.morning), message_id: DemoId(DEMO_IDS.message) })

/** The models whose limits come from the settings (MESSAGE_MAX_LENGTH). */
export const chatModels = (maxLength: number) => {
  const Body = Text({ minLength: 1, maxLength, examples: ['Boiler two is warm, start the pumps'] }, '/body')
  const PostMessageRequest = t.Object({ body: Body, client_id: t.Optional(ClientId) }, { additionalProperties: false, $id: componentId('PostMessageRequest') })
  const EditMessageRequest = t.Object({ body: Body }, { additionalProperties: false, $id: componentId('EditMessageRequest') })
  return new Elysia({ name: 'models.chat' })
    .use(sharedModels)
    .model({ Message, ChatHistoryRequest, ChatHistoryResponse, PostMessageRequest, EditMessageRequest })
}

export type Message = typeof Message.static
