import type { ChatService } from '../../chat/service'
import type { EventBus } from '../../events/bus'
import { chatStream } from '../../events/model'
import type { RoomService, StreamAccess } from '../../rooms/service'
import { ApiError } from '../../../shared/errors'
import type { PresenceService } from '../presence/service'
import type { FrameError } from '../protocol'
import type { Transport } from '../transport'
import type { Link } from '../transport'
import type { HubControl, Ops, StreamKind } from './kind'
import { refusedAsUndefined, roomOf } from './rooms'

/** A socket's typing signals in one room, at most one per this long (clients repeat them while their user types). */
const TYPING_INTERVAL_MS = 2000

/** Refusals of a chat message that an error frame carries (others close the socket with 1011). */
const SEND_ERRORS = new Set(['not_found', 'forbidden', 'conflict', 'rate_limited', 'validation_error'])

/**
 * A room's chat (`chat:<id>`): its messages, and who joins and leaves in the chat's own order. Its
 * players and admins follow it; an invitee, who sees the room, gets forbidden, as over REST. A
 * chat starts with who of its players is online; presence and typing are signals, never stored.
 * Its ops: send (a message, as POST /rooms/{room_id}/messages) and typing.
 */
export function chatStreams(deps: {
  rooms: Pick<RoomService, 'streamAccess'>
  chat: Pick<ChatService, 'post'>
  presence: Pick<PresenceService, 'online'>
  bus: Pick<EventBus, 'signal'>
  transport: Pick<Transport, 'send' | 'refuse' | 'close'>
}): { kind: StreamKind<StreamAccess>; ops: Ops } {
  /** When each socket last said it was typing in each chat (ms). */
  const typedAt = new WeakMap<Link, Map<string, number>>()
  /** Tells this instance's readers of a chat that one of its players is online or not. */
  const relay = (hub: HubControl, roomId: string, user_id: string, online: boolean) =>
    hub.publish(chatStream(roomId), { op: 'presence', room_id: roomId, user_id, online })

  const kind: StreamKind<StreamAccess> = {
    owns: (stream) => roomOf(stream, 'chat') !== undefined,

    async right(user, stream) {
      const access = await refusedAsUndefined(deps.rooms.streamAccess(user, roomOf(stream, 'chat')!))
      if (!access || (access.until !== undefined && access.until <= Date.now())) return 'not_found'
      return access.right === 'invitee' ? 'forbidden' : access
    },

    react({ stream, seq, event }, hub) {
      switch (event.type) {
        case 'member_left':
        case 'member_kicked':
          return hub.withdraw(event.user_id, stream, (right) => right === 'admin', seq)
        case 'member_joined': {
          // A new player: whether they are online, to this instance's readers (their own arrival signal named only the rooms they were in then).
          const { room_id, user_id } = event
          return void deps.presence
            .online([user_id])
            .then((online) => online.length > 0 && relay(hub, room_id, user_id, true))
            .catch(() => {})
        }
        case 'room_closed':
          return hub.end(stream)
      }
    },

    greet: async (access) => ({ online: await deps.presence.online(access.players) }),

    signal(signal, hub) {
      if (signal.type === 'presence') for (const roomId of signal.room_ids) relay(hub, roomId, signal.user_id, signal.online)
      else hub.publish(chatStream(signal.room_id), { op: 'typing', room_id: signal.room_id, user_id: signal.user_id })
    },
  }

  const ops: Ops = {
    /** A chat message over the socket: the same rules as POST /rooms/{room_id}/messages, answered with `sent` or an error frame. */
    async send({ room_id, body, client_id }, client) {
      try {
        const user = await client.account()
        if (!user) return deps.transport.close(client.link, 'sessionEnded', 'the session has ended or the account is inactive')
        const { message } = await deps.chat.post(user, room_id, body, client_id)
        deps.transport.send(client.link, { op: 'sent', client_id, message_id: message.message_id, seq: message.seq })
      } catch (error) {
        if (!(error instanceof ApiError) || !SEND_ERRORS.has(error.code)) throw error
        deps.transport.send(client.link, { op: 'error', error: error.code as FrameError, reason: error.reason, client_id, message: error.message })
      }
    },

    /**
     * Tells a room's players that this one is typing: only a player following the room's chat, in
     * an open room, and at most once per TYPING_INTERVAL_MS per socket and room (the rest is
     * dropped, as a client repeats it while its user types).
     */
    typing({ room_id }, client) {
      const stream = chatStream(room_id)
      if (client.rightTo(stream) !== 'member') return deps.transport.refuse(client.link, stream, 'forbidden', 'not_a_player')
      if (client.ended(stream)) return deps.transport.refuse(client.link, stream, 'conflict', 'room_closed')
      const now = Date.now()
      let rooms = typedAt.get(client.link)
      if (!rooms) typedAt.set(client.link, (rooms = new Map()))
      const last = rooms.get(room_id)
      if (last !== undefined && now - last < TYPING_INTERVAL_MS) return
      rooms.set(room_id, now)
      return deps.bus.signal({ type: 'typing', room_id, user_id: client.userId })
    },
  }

  return { kind, ops }
}
