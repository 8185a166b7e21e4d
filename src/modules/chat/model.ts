import { Type } from '@sinclair/typebox'
import { Elysia, t } from 'elysia'
import { componentId, sharedModels, Text, Timestamp, Uuid } from '../../shared/model'

/** A page cursor: opaque to clients (a message's number in its room, in base 36, at most six digits). */
export const Cursor = t.String({ pattern: '^m[0-9a-z]{1,6}$', examples: ['m2s'], description: 'a cursor from an earlier page' })

/** The largest number a cursor stands for: the columns are 32-bit, and a bound past them keeps PostgreSQL off their index. */
const MAX_CURSOR_SEQ = 2 ** 31 - 1

export const toCursor = (seq: number) => `m${seq.toString(36)}`
/** A cursor's number, capped at 2^31 - 1: past it no message lies, so the page is the same. */
export const fromCursor = (cursor: string) => Math.min(Number.parseInt(cursor.slice(1), 36), MAX_CURSOR_SEQ)

/** A history query's cursors as numbers, for the store. */
export const seqRange = (query: { before?: string; after?: string; limit?: number }) => ({
  before: query.before === undefined ? undefined : fromCursor(query.before),
  after: query.after === undefined ? undefined : fromCursor(query.after),
  limit: query.limit ?? 50,
})

/** A page of a history (newest first) with the cursors to the pages around it. */
export function historyPage<Item extends { seq: number }>(items: Item[], more: boolean, query: { after?: string }) {
  const oldest = items.at(-1)
  const newest = items[0]
  return {
    messages: items,
    // Reading forward, what lies before the page is older; reading back, only `more` says so.
    older: oldest && (query.after !== undefined || more) ? toCursor(oldest.seq) : null,
    newer: newest ? toCursor(newest.seq) : (query.after ?? null),
  }
}

export const ClientId = t.String({
  pattern: '^[A-Za-z0-9_-]{1,64}$',
  examples: ['c-1732370000-7'],
  description: "the sender's own id for the message: sending it again answers the message already stored",
})

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

export const ChatHistoryRequest = t.Object(
  {
    before: t.Optional(Cursor),
    after: t.Optional(Cursor),
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50, description: 'page size' })),
  },
  { additionalProperties: false, $id: componentId('ChatHistoryRequest') },
)

export const ChatHistoryResponse = t.Object(
  {
    messages: t.Array(Message, { description: 'newest first' }),
    older: t.Union([Cursor, t.Null()], { description: 'pass as `before` for the page before this one; null at the start' }),
    newer: t.Union([Cursor, t.Null()], { description: 'pass as `after` for what came after this page; null when nothing newer is known' }),
  },
  { $id: componentId('ChatHistoryResponse') },
)

export const MessageParams = t.Object({ room_id: Uuid, message_id: Uuid })

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
export type ChatHistoryQuery = typeof ChatHistoryRequest.static
