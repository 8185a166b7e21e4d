import { type Static, type TProperties, Type as T } from '@sinclair/typebox'

/**
 * Lobby events: each change to rooms, invitations, sessions and accounts, as the people concerned
 * receive it. `room:<id>` streams carry what a room's members see; `user:<id>` streams what
 * concerns one person. The schemas give both the types and the AsyncAPI document.
 */
const Id = (description: string) => T.String({ format: 'uuid', description })
const RoomId = Id('the room')
const InviteId = Id('the invitation')

const event = <Type extends string, Fields extends TProperties>(type: Type, description: string, fields: Fields) =>
  T.Object({ type: T.Literal(type), ...fields }, { title: type, description, additionalProperties: false })

export const LobbyEventSchema = T.Union([
  event('room_created', 'room stream: a player opened a room and took its first seat', {
    room_id: RoomId,
    owner_id: Id('who opened it'),
    game_role: T.String({ description: "its owner's game role" }),
    max_players: T.Integer({ minimum: 1 }),
  }),
  event('member_joined', 'room and chat streams: a player took a seat', { room_id: RoomId, user_id: Id('the player'), game_role: T.String() }),
  event('member_left', 'room and chat streams: a player left (or their account was deleted)', { room_id: RoomId, user_id: Id('the player') }),
  event('member_kicked', 'room and chat streams: the owner or an admin removed a player', { room_id: RoomId, user_id: Id('the player') }),
  event('owner_changed', 'room stream: the owner left; the earliest-joined player owns the room now', { room_id: RoomId, owner_id: Id('the new owner') }),
  event('room_ready', 'room stream: every seat is taken', { room_id: RoomId }),
  event('room_not_ready', 'room stream: a seat came free', { room_id: RoomId }),
  event('room_closed', 'room and chat streams: closed by its owner or an admin, or emptied', { room_id: RoomId }),
  event('removed_from_room', 'user stream: you were kicked', { room_id: RoomId, reason: T.Literal('kicked') }),
  event('invitation_received', 'user stream: someone invited you', {
    invite_id: InviteId,
    room_id: RoomId,
    inviter_id: Id('who invited'),
    player_role: T.String(),
    expires_at: T.String({ format: 'date-time' }),
  }),
  event('invitation_accepted', "user stream (the inviter's and the receiver's): an invitation was used to join", {
    invite_id: InviteId,
    room_id: RoomId,
    receiver_id: Id('who joined'),
  }),
  event('invitation_declined', "user stream (the inviter's and the receiver's): an invitation was declined", {
    invite_id: InviteId,
    room_id: RoomId,
    receiver_id: Id('who declined'),
  }),
  event('invitation_revoked', 'user stream: an invitation to you was withdrawn (revoked, or its room closed)', { invite_id: InviteId, room_id: RoomId }),
  event('session_revoked', 'user stream: one of your sessions ended; its sockets close with 4003', {
    session_id: Id('the session'),
    reason: T.String({ description: 'logout, password_changed, refresh_token_reused, account_deactivated, account_deleted, session_limit...' }),
  }),
  event('message_posted', 'chat stream: a member wrote in the room', {
    room_id: RoomId,
    message_id: Id('the message'),
    author_id: Id('who wrote it'),
    body: T.String({ description: 'empty in a replay once the message was deleted' }),
    client_id: T.Union([T.String(), T.Null()], { description: "the sender's own id for it, which makes a resend harmless" }),
    created_at: T.String({ format: 'date-time' }),
  }),
  event('message_edited', 'chat stream: its author changed a message', {
    room_id: RoomId,
    message_id: Id('the message'),
    body: T.String({ description: 'empty in a replay once the message was deleted' }),
    edited_at: T.String({ format: 'date-time' }),
  }),
  event('message_deleted', 'chat stream: a message was deleted by its author, the owner or an admin', {
    room_id: RoomId,
    message_id: Id('the message'),
    deleted_by: Id('who deleted it'),
  }),
  event('direct_message', "user stream (the author's and the recipient's): a direct message", {
    conversation_id: Id('the conversation'),
    message_id: Id('the message'),
    seq: T.Integer({ minimum: 1, description: 'its number in the conversation' }),
    author_id: Id('who wrote it'),
    recipient_id: Id('whom it is for'),
    body: T.String(),
    client_id: T.Union([T.String(), T.Null()]),
    created_at: T.String({ format: 'date-time' }),
  }),
  event('conversation_read', "user stream (both sides'): someone's read marker in a conversation moved", {
    conversation_id: Id('the conversation'),
    user_id: Id('who read'),
    last_read_seq: T.Integer({ minimum: 0 }),
  }),
  event('device_logged_in', 'user stream: a new device logged in to the account with a QR code approved on one of its devices', {
    session_id: Id('the new session'),
    address: T.String({ description: 'the client address the device logged in from' }),
    device: T.String({ description: 'its browser and system, as its User-Agent claims, such as "Chrome 131 on Windows"' }),
  }),
  event('login_request_decided', 'login streams (never a socket): a QR login request was approved or denied on a phone', {
    request_id: Id('the login request'),
    approved: T.Boolean(),
  }),
  event('account_created', 'accounts stream: an account was made (registration, an admin, or a first sign-in at a provider)', {
    user_id: Id('the account'),
  }),
  event('account_changed', 'user and accounts streams: an account was changed (by its owner or an admin)', {
    user_id: Id('the account'),
    fields: T.Array(T.String(), { description: 'the fields that changed: username, user_role, is_active, password, or a profile field' }),
  }),
  event('account_deleted', 'user and accounts streams: an account was deleted (restorable until USER_PURGE_AFTER)', { user_id: Id('the account') }),
  event('account_restored', 'user and accounts streams: a deleted account was restored', { user_id: Id('the account') }),
  event('account_erased', 'user and accounts streams: a deleted account was erased for good', { user_id: Id('the account') }),
])

export type LobbyEvent = Static<typeof LobbyEventSchema>
export type EventType = LobbyEvent['type']
export const EVENT_TYPES = LobbyEventSchema.anyOf.map((schema) => schema.properties.type.const) as EventType[]

/** An event as the log keeps it: its stream, its place in it, its place in the whole log, and when it was written. */
export interface StoredEvent {
  stream: string
  seq: number
  /** Its place in the whole log, across streams: given as its transaction ends (undefined until then). */
  position?: number
  event: LobbyEvent
  created_at: string
}

export const roomStream = (roomId: string) => `room:${roomId}`
/** A room's chat, a stream of its own: members read it, invitees (who follow the room's stream) do not. */
export const chatStream = (roomId: string) => `chat:${roomId}`
export const userStream = (userId: string) => `user:${userId}`
/** A QR login request's decision, which wakes the desktop waiting for it on any instance; never for a socket. */
export const loginRequestStream = (requestId: string) => `login:${requestId}`
/** Every account's changes, for other services (through the relay of the log), never for a socket. */
export const ACCOUNTS_STREAM = 'accounts'
