import { Type } from '@sinclair/typebox'
import { Elysia, t } from 'elysia'
import { DEMO_IDS } from '../../shared/demo'
import { componentId, Count, DemoId, ListResponse, Pagination, sharedModels, Text, Timestamp, Uuid } from '../../shared/model'
import { ClientId, Cursor, HistoryQuery } from '../../shared/history'
import { PublicProfile } from '../users/model'

export const DirectMessage = t.Object(
  {
    message_id: Uuid,
    conversation_id: Uuid,
    seq: Type.Integer({ minimum: 1, description: 'its number in the conversation' }),
    author_id: t.Union([Uuid, t.Null()], { description: 'null when the account was deleted' }),
    body: t.String({ examples: ['See you on the night shift'] }),
    client_id: t.Union([ClientId, t.Null()]),
    created_at: Timestamp,
  },
  { $id: componentId('DirectMessage') },
)

export const Conversation = t.Object(
  {
    conversation_id: Uuid,
    peer: t.Object(PublicProfile),
    last_message: t.Union([DirectMessage, t.Null()]),
    unread_count: Count("the peer's messages after your read marker"),
    last_read_seq: Count('your read marker'),
    updated_at: Timestamp,
  },
  { $id: componentId('Conversation') },
)

export const ConversationsRequest = t.Object({ ...Pagination }, { additionalProperties: false, $id: componentId('ConversationsRequest') })
export const ConversationsResponse = ListResponse('ConversationsResponse', 'conversations', Conversation)

export const DirectHistoryResponse = t.Object(
  {
    messages: t.Array(DirectMessage, { description: 'newest first' }),
    older: t.Union([Cursor, t.Null()], { description: 'pass as `before` for the page before this one; null at the start' }),
    newer: t.Union([Cursor, t.Null()], { description: 'pass as `after` for what came after this page' }),
  },
  { $id: componentId('DirectHistoryResponse') },
)

export const ReadMarkerRequest = t.Object(
  { last_read_seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'the number of the last message read' }) },
  { additionalProperties: false, $id: componentId('ReadMarkerRequest') },
)

export const BlockedUser = t.Object({ user_id: Uuid, username: t.String(), blocked_at: Timestamp }, { $id: componentId('BlockedUser') })
export const BlocksRequest = t.Object({ ...Pagination }, { additionalProperties: false, $id: componentId('BlocksRequest') })
export const BlocksResponse = ListResponse('BlocksResponse', 'blocked', BlockedUser)

export const PeerParams = t.Object({ user_id: DemoId(DEMO_IDS.users.alice) })

export const dmsModels = (maxLength: number) => {
  const PostDirectMessageRequest = t.Object(
    { body: Text({ minLength: 1, maxLength, examples: ['See you on the night shift'] }, '/body'), client_id: t.Optional(ClientId) },
    { additionalProperties: false, $id: componentId('PostDirectMessageRequest') },
  )
  return new Elysia({ name: 'models.dms' }).use(sharedModels).model({
    DirectMessage,
    Conversation,
    ConversationsRequest,
    ConversationsResponse,
    DirectHistoryRequest: t.Object(HistoryQuery, { additionalProperties: false, $id: componentId('DirectHistoryRequest') }),
    DirectHistoryResponse,
    PostDirectMessageRequest,
    ReadMarkerRequest,
    BlockedUser,
    BlocksRequest,
    BlocksResponse,
  })
}

export type DirectMessage = typeof DirectMessage.static
export type Conversation = typeof Conversation.static
export type BlockedUser = typeof BlockedUser.static
