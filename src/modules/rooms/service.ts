import type { Database } from '../../db/database'
import { inPages } from '../../db/batches'
import type { UserRateLimiter } from '../../db/rate-limits'
import { nowIso } from '../../lib/clock'
import { conflict, forbidden, invalidField, notFound } from '../../shared/errors'
import type { EventLog } from '../events/service'
import { roomStream } from '../events/model'
import type { User } from '../users/model'
import type { CreateRoomRequest, Room, RoomFilter, Seat } from './model'
import type { MembershipService } from './membership'
import type { RoomStore } from './store'

export interface RoomPolicy {
  defaultMaxPlayers: number
  maxPlayersLimit: number
  /** Open rooms one user may own. */
  quota: number
  /** Open rooms one user may play in (the membership service holds to it). */
  seatQuota: number
}

/** Why one may follow a room's events: playing in it, invited to it, or as an admin. */
export type StreamRight = 'member' | 'invitee' | 'admin'

/** Why one may follow a room's streams, as the realtime layer asks (its Access). */
export interface StreamAccess {
  right: StreamRight
  /** For an invitee: when the invitation runs out (ms since the epoch). */
  until?: number
  players: string[]
  /** The room is closed: nothing more is written or typed in its chat. */
  ended: boolean
}

/**
 * Rooms: creating them (within the owner's quota and rate), listing them, and what the owner or an
 * admin may do to one (kick, close) or a player (leave). Seats change through the membership
 * service, under the room's lock.
 */
export class RoomService {
  constructor(
    private readonly deps: {
      db: Database
      roomStore: RoomStore
      membership: MembershipService
      events: EventLog
      policy: RoomPolicy
      creations: UserRateLimiter
    },
  ) {}

  /**
   * A new room, unless its owner already has ROOM_QUOTA open ones (409) or created ROOM_RATE_LIMIT
   * lately (429). `roomId` is given only by the demo data, whose ids are fixed (shared/demo.ts).
   */
  async create(owner: User, { room_name, max_players = this.deps.policy.defaultMaxPlayers, game_role = 'host' }: CreateRoomRequest, roomId = Bun.randomUUIDv7()): Promise<Room> {
    const { policy, roomStore } = this.deps
    if (max_players > policy.maxPlayersLimit) throw invalidField('/max_players', `must be at most ${policy.maxPlayersLimit}`)
    await this.deps.creations.consume(owner.user_id)
    const room = { room_id: roomId, room_name, owner_id: owner.user_id, max_players, created_at: nowIso() }
    await this.deps.db.transaction(async (tx) => {
      // Concurrent creations by one owner count one after the other.
      await tx.lock(`rooms-owned-by:${owner.user_id}`)
      if ((await roomStore.countOpenOwnedBy(owner.user_id, tx)) >= policy.quota)
        throw conflict('quota_reached', `You already own ${policy.quota} open rooms, the most allowed; close one first`)
      // Its creator takes a seat in it.
      await this.deps.membership.assertSeatFree(owner.user_id, tx)
      await roomStore.insert(room, game_role, tx)
      await this.deps.events.emit(tx, [roomStream(room.room_id), { type: 'room_created', room_id: room.room_id, owner_id: owner.user_id, game_role, max_players }])
    })
    return this.deps.membership.require(room.room_id, this.deps.db)
  }

  listAll(filter: RoomFilter) {
    return this.deps.roomStore.list(filter)
  }

  listMine(user: User, filter: RoomFilter) {
    return this.deps.roomStore.list(filter, user.user_id)
  }

  /** Every seat of a user, open rooms and closed, a page at a time: for the export of their data. */
  seatsOf(userId: string): AsyncGenerator<Seat[]> {
    const { roomStore, db } = this.deps
    return inPages((after, limit) => roomStore.seatsOf(userId, after, limit, db.reader), (seat) => seat.room_id, '')
  }

  async get(user: User, roomId: string): Promise<Room> {
    return (await this.deps.membership.access(user, roomId, this.deps.db)).room
  }

  /** Why `user` may follow the room's events (404 if they may not); `until`, for an invitee, is when that ends (ms since the epoch). */
  async streamAccess(user: User, roomId: string): Promise<StreamAccess> {
    const { seating, isMember, invitedUntil } = await this.deps.membership.seatedAccess(user, roomId)
    const { players, is_closed: ended } = seating
    if (isMember) return { right: 'member', players, ended }
    if (invitedUntil !== undefined) return { right: 'invitee', until: Date.parse(invitedUntil), players, ended }
    return { right: 'admin', players, ended }
  }

  async kick(actor: User, roomId: string, userId: string): Promise<void> {
    await this.deps.membership.withRoom(actor, roomId, async ({ room, canManage }, tx) => {
      if (!canManage) throw forbidden('not_room_manager', 'Only the owner or an admin may remove players')
      if (userId === actor.user_id && room.owner_id === actor.user_id) throw conflict('self_target', 'The owner cannot kick themself; leave the room instead')
      if (!room.players.some((player) => player.user_id === userId)) throw notFound('That user is not in this room')
      await this.deps.membership.unseat(room, userId, 'kicked', tx)
    })
  }

  async leave(user: User, roomId: string): Promise<void> {
    await this.deps.membership.withRoom(user, roomId, async ({ room, isMember }, tx) => {
      if (!isMember) throw notFound('You are not in this room')
      await this.deps.membership.unseat(room, user.user_id, 'left', tx)
    })
  }

  async close(actor: User, roomId: string): Promise<Room> {
    return this.deps.membership.withRoom(actor, roomId, async ({ room, canManage }, tx) => {
      if (!canManage) throw forbidden('not_room_manager', 'Only the owner or an admin may close the room')
      return room.is_closed ? room : this.deps.membership.close(roomId, tx)
    })
  }
}
