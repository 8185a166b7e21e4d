/**
 * Lobby events: each change to rooms, invitations, sessions and accounts, as the people concerned
 * receive it. `room:<id>` streams carry what a room's members see; `user:<id>` streams what
 * concerns one person.
 */
export type LobbyEvent =
  | { type: 'member_joined'; room_id: string; user_id: string; game_role: string }
  | { type: 'member_left'; room_id: string; user_id: string }
  | { type: 'member_kicked'; room_id: string; user_id: string }
  | { type: 'owner_changed'; room_id: string; owner_id: string }
  | { type: 'room_ready'; room_id: string }
  | { type: 'room_not_ready'; room_id: string }
  | { type: 'room_closed'; room_id: string }
  | { type: 'removed_from_room'; room_id: string; reason: 'kicked' }
  | { type: 'invitation_received'; invite_id: string; room_id: string; inviter_id: string; player_role: string; expires_at: string }
  | { type: 'invitation_accepted'; invite_id: string; room_id: string; receiver_id: string }
  | { type: 'invitation_declined'; invite_id: string; room_id: string; receiver_id: string }
  | { type: 'invitation_revoked'; invite_id: string; room_id: string }
  | { type: 'session_revoked'; session_id: string; reason: string }
  | { type: 'account_changed'; user_id: string; fields: string[] }

export type EventType = LobbyEvent['type']

// A record, so that a type added to LobbyEvent and left out here fails to compile.
const TYPES: Record<EventType, true> = {
  member_joined: true,
  member_left: true,
  member_kicked: true,
  owner_changed: true,
  room_ready: true,
  room_not_ready: true,
  room_closed: true,
  removed_from_room: true,
  invitation_received: true,
  invitation_accepted: true,
  invitation_declined: true,
  invitation_revoked: true,
  session_revoked: true,
  account_changed: true,
}
export const EVENT_TYPES = Object.keys(TYPES) as EventType[]

/** An event as the log keeps it: its stream, its place in it, and when it was written. */
export interface StoredEvent {
  stream: string
  seq: number
  event: LobbyEvent
  created_at: string
}

export const roomStream = (roomId: string) => `room:${roomId}`
export const userStream = (userId: string) => `user:${userId}`
