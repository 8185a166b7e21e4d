// Hint, Kind, OptionalKind and ReadonlyKind are imported only so that client/'s declaration build can name the frames' types (TS4023).
import { type Hint, type Kind, type OptionalKind, type ReadonlyKind, type Static, type TProperties, Type as T } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ErrorReason } from '../../shared/model'
import { LobbyEventSchema } from '../events/model'

/**
 * The /realtime protocol: its frames (JSON text, each with an `op`), the close codes, one for each
 * way a socket ends, and the errors a frame may get while the socket stays open. The AsyncAPI
 * document (asyncapi.ts) is built from these.
 */
const frame = <Op extends string, Fields extends TProperties>(op: Op, description: string, fields: Fields) =>
  T.Object({ op: T.Literal(op), ...fields }, { title: op, description, additionalProperties: false })

const Stream = T.String({
  minLength: 1,
  maxLength: 100,
  description: "'user' (your own stream, also as user:<your id>), room:<room id> (the lobby), or chat:<room id> (its chat)",
})
const Seq = T.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: "a number in the stream: each event's is one more than the last" })
const Epoch = T.String({ maxLength: 100, description: "the event log's identity: numbers from another epoch mean nothing here" })
const Instant = T.String({ format: 'date-time' })

/** What a client sends. */
export const ClientFrames = {
  auth: frame('auth', 'First frame, within REALTIME_AUTH_TIMEOUT; again with a fresh token (same user) before the current one expires.', {
    token: T.String({ maxLength: 4096, description: 'an access token, as for the Authorization header' }),
  }),
  subscribe: frame('subscribe', 'Follows a stream: replays the events after `after` from the log, then goes on live.', {
    stream: Stream,
    after: T.Optional(T.Integer({ ...Seq, description: 'the last number seen; leave out to start from now' })),
    epoch: T.Optional(Epoch),
  }),
  unsubscribe: frame('unsubscribe', 'Stops following a stream.', { stream: Stream }),
  ping: frame('ping', 'Answered with pong (the server also pings at the websocket level).', {}),
  typing: frame('typing', "Tells the room's players you are typing (never stored; send it every few seconds while you type: one per socket and room every 2 s goes on, the rest is dropped). Refused with an error frame (stream chat:<room_id>) when you do not play in the room (forbidden) or it is closed (conflict).", {
    room_id: T.String({ format: 'uuid' }),
  }),
  send: frame('send', "Writes in a room's chat (its players); answered with sent, or an error frame naming client_id.", {
    room_id: T.String({ format: 'uuid' }),
    body: T.String({ minLength: 1, maxLength: 40_000, description: 'plain text with something visible, 1 to MESSAGE_MAX_LENGTH characters after NFC (the frame is bounded by REALTIME_MAX_FRAME_BYTES)' }),
    client_id: T.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'your own id for it: sending it again answers the stored message' }),
  }),
}

export const ClientFrame = T.Union(Object.values(ClientFrames))
export type ClientFrame = Static<typeof ClientFrame>
export const clientFrameCheck = TypeCompiler.Compile(ClientFrame)

/** What the server sends. */
export const ServerFrames = {
  hello: frame('hello', 'On connecting: authenticate within this many milliseconds.', { auth_timeout_ms: T.Integer() }),
  ready: frame('ready', 'The first auth frame was accepted. Subscribe now.', {
    user_id: T.String({ format: 'uuid' }),
    expires_at: { ...Instant, description: 'when the token expires: send a fresh one before' },
    epoch: Epoch,
  }),
  reauthenticated: frame('reauthenticated', 'A fresh token was accepted.', { expires_at: Instant }),
  event: frame('event', 'One event of a followed stream, in order, each once.', { stream: Stream, seq: Seq, event: LobbyEventSchema }),
  subscribed: frame(
    'subscribed',
    'The replay is done; live events follow. recovered: false means the events after `after` are gone (trimmed by EVENT_RETENTION, another epoch, or a number the log never reached): refetch the state over REST, then go on from last_seq. Every subscribe gets one answer: this, or an error frame; when the right to the stream goes while it catches up, this comes after the event that took it, then unsubscribed.',
    {
      stream: Stream,
      last_seq: Seq,
      recovered: T.Boolean(),
      epoch: Epoch,
      online: T.Optional(
        T.Array(T.String({ format: 'uuid' }), { description: "chat streams: the room's players online now (changes follow as presence frames)" }),
      ),
    },
  ),
  unsubscribed: frame('unsubscribed', 'A stream is no longer followed: as asked, or (with a reason) because access to it was lost.', {
    stream: Stream,
    reason: T.Optional(T.Literal('access_lost')),
  }),
  error: frame('error', 'A subscribe, send or typing frame was refused; the socket stays open. A subscribe: not_found (no such stream, or not yours to see), forbidden (a room you are invited to: its chat is its players\'), already_subscribed, too_many_subscriptions. A send: as POST /rooms/{room_id}/messages answers, with its reason. A typing frame: forbidden (reason not_a_player) or conflict (reason room_closed).', {
    error: T.Union([
      T.Literal('not_found'),
      T.Literal('already_subscribed'),
      T.Literal('too_many_subscriptions'),
      T.Literal('forbidden'),
      T.Literal('conflict'),
      T.Literal('rate_limited'),
      T.Literal('validation_error'),
    ]),
    stream: T.Optional(T.String({ description: 'the stream as the client named it (subscribe), or chat:<room_id> (typing)' })),
    reason: T.Optional(ErrorReason),
    client_id: T.Optional(T.String({ description: 'the message refused (send)' })),
    message: T.Optional(T.String({ description: 'what was wrong (send)' })),
  }),
  pong: frame('pong', 'The answer to ping.', {}),
  presence: frame('presence', "To a chat stream's sockets: one of the room's players came online or went (never stored).", {
    room_id: T.String({ format: 'uuid' }),
    user_id: T.String({ format: 'uuid' }),
    online: T.Boolean(),
  }),
  typing: frame('typing', "To a chat stream's sockets: a player is typing (never stored).", {
    room_id: T.String({ format: 'uuid' }),
    user_id: T.String({ format: 'uuid' }),
  }),
  sent: frame('sent', 'A send frame was stored (or had been, with that client_id): its message id and its number in the chat stream.', {
    client_id: T.String(),
    message_id: T.String({ format: 'uuid' }),
    seq: Seq,
  }),
}

export type ServerFrame = Static<(typeof ServerFrames)[keyof typeof ServerFrames]>
export const CLOSE = {
  serverDraining: 1001,
  frameTooBig: 1009,
  internalError: 1011,
  serverFull: 1013,
  badFrame: 4000,
  unauthorized: 4001,
  tokenExpired: 4002,
  sessionEnded: 4003,
  authTimeout: 4008,
  slowConsumer: 4009,
  rateLimited: 4029,
  tooManySockets: 4030,
} as const

export type CloseReason = keyof typeof CLOSE

/** What each close code means, for the AsyncAPI document and the README. */
export const CLOSE_MEANINGS: Record<CloseReason, string> = {
  serverDraining: 'the instance is shutting down: reconnect (to another one) and resume',
  frameTooBig: 'a frame was larger than REALTIME_MAX_FRAME_BYTES',
  internalError: 'the event log could not be read: reconnect and resume',
  serverFull: 'the instance holds REALTIME_MAX_SOCKETS already: retry later or elsewhere',
  badFrame: 'a frame was not a JSON object with a known op and valid fields',
  unauthorized: 'the first frame was not auth; or the access token is not valid, its session has ended, or it belongs to another user',
  tokenExpired: 'the access token has expired (already at the first auth frame, or before a fresh one was sent): refresh it and resume',
  sessionEnded: 'the session was revoked (logout, password change, refresh-token reuse, deactivation, deletion)',
  authTimeout: 'no auth frame within REALTIME_AUTH_TIMEOUT',
  slowConsumer: 'more than REALTIME_SLOW_CONSUMER_BYTES waited to be sent: reconnect and resume',
  rateLimited: 'more frames than REALTIME_MESSAGE_RATE per second',
  tooManySockets: "the user's sockets on this instance reached REALTIME_MAX_SOCKETS_PER_USER",
}

export type FrameError = Static<typeof ServerFrames.error>['error']
