import type { Database, Queryable, Transaction } from '../../db/database'
import type { UserRateLimiter } from '../../db/rate-limits'
import { nowIso } from '../../lib/clock'
import { ApiError, conflict, forbidden, invalidField, notFound } from '../../shared/errors'
import type { InviteStore } from '../invites/store'
import type { User } from '../users/model'
import type { CreateRoomRequest, Room, RoomFilter } from './model'
import type { RoomStore } from './store'

export interface RoomPolicy {
  defaultMaxPlayers: number
  maxPlayersLimit: number
  /** Open rooms one user may own. */
  quota: number
}

/** What the caller is to a room they may see. */
export interface RoomAccess {
  room: Room
  isMember: boolean
  /** The owner or an admin: may invite, kick and close. */
  canManage: boolean
}

/**
 * Rooms: who sees them (members, invitees, admins; anyone else gets 404, as if the room did not
 * exist), who manages them (the owner and admins) and how ownership moves. Every change to a room
 * runs in a transaction holding that room's lock, so concurrent joins, leaves and kicks on several
 * instances apply one after the other.
 */
export class RoomService {
  constructor(
    private readonly db: Database,
    private readonly rooms: RoomStore,
    private readonly invites: InviteStore,
    private readonly policy: RoomPolicy,
    private readonly creations: UserRateLimiter,
  ) {}

  /** A new room, unless its owner already has ROOM_QUOTA open ones (409) or created ROOM_RATE_LIMIT lately (429). */
  async create(owner: User, { room_name, max_players = this.policy.defaultMaxPlayers, game_role = 'host' }: CreateRoomRequest): Promise<Room> {
    if (max_players > this.policy.maxPlayersLimit)
      throw invalidField('/max_players', `must be at most ${this.policy.maxPlayersLimit}`)
    await this.creations.consume(owner.user_id)
    const room = { room_id: Bun.randomUUIDv7(), room_name, owner_id: owner.user_id, max_players, created_at: nowIso() }
    await this.db.transaction(async (tx) => {
      // Concurrent creations by one owner count one after the other.
      await tx.lock(`rooms-owned-by:${owner.user_id}`)
      if ((await this.rooms.countOpenOwnedBy(owner.user_id, tx)) >= this.policy.quota)
        throw conflict(`You already own ${this.policy.quota} open rooms, the most allowed; close one first`)
      await this.rooms.insert(room, game_role, tx)
    })
    return this.#require(room.room_id)
  }

  listAll(filter: RoomFilter) {
    return this.rooms.list(filter)
  }

  listMine(user: User, filter: RoomFilter) {
    return this.rooms.list(filter, user.user_id)
  }

  async get(user: User, roomId: string): Promise<Room> {
    return (await this.access(user, roomId)).room
  }

  /** The room as the caller may see it; 404 when they may not. */
  async access(user: User, roomId: string, q: Queryable = this.db): Promise<RoomAccess> {
    const room = await this.rooms.find(roomId, q)
    const isAdmin = user.user_role === 'admin'
    const isMember = room?.players.some((player) => player.user_id === user.user_id) ?? false
    if (!room || !(isAdmin || isMember || (await this.invites.isInvited(roomId, user.user_id, q)))) throw roomNotFound()
    return { room, isMember, canManage: isAdmin || room.owner_id === user.user_id }
  }

  /** Runs `work` holding the room's lock, with the caller's access to it read inside the lock. */
  async withRoom<Result>(user: User, roomId: string, work: (access: RoomAccess, tx: Transaction) => Promise<Result>): Promise<Result> {
    return this.db.transaction(async (tx) => {
      await tx.lock(`room:${roomId}`)
      return work(await this.access(user, roomId, tx), tx)
    })
  }

  async kick(actor: User, roomId: string, userId: string): Promise<void> {
    await this.withRoom(actor, roomId, async ({ room, canManage }, tx) => {
      if (!canManage) throw forbidden('Only the owner or an admin may remove players')
      if (userId === actor.user_id && room.owner_id === actor.user_id)
        throw conflict('The owner cannot kick themself; leave the room instead')
      if (!room.players.some((player) => player.user_id === userId)) throw notFound('That user is not in this room')
      await this.#removePlayer(room, userId, tx)
    })
  }

  async leave(user: User, roomId: string): Promise<void> {
    await this.withRoom(user, roomId, async ({ room, isMember }, tx) => {
      if (!isMember) throw notFound('You are not in this room')
      await this.#removePlayer(room, user.user_id, tx)
    })
  }

  async close(actor: User, roomId: string): Promise<Room> {
    return this.withRoom(actor, roomId, async ({ room, canManage }, tx) => {
      if (!canManage) throw forbidden('Only the owner or an admin may close the room')
      if (room.is_closed) return room
      await this.rooms.update(roomId, { is_closed: true }, nowIso(), tx)
      await this.invites.deletePendingForRoom(roomId, tx)
      return this.#require(roomId, tx)
    })
  }

  /** For user deletion: leaves every room the user plays in, passing ownership on as a leave does. */
  async removeFromAllRooms(userId: string, tx: Transaction): Promise<void> {
    for (const roomId of await this.rooms.roomIdsOf(userId, tx)) {
      await tx.lock(`room:${roomId}`)
      await this.#removePlayer(await this.#require(roomId, tx), userId, tx)
    }
  }

  /**
   * The last one out closes the room, withdrawing its pending invitations as a close does; an owner
   * leaving hands it to the earliest-joined player left.
   */
  async #removePlayer(room: Room, userId: string, tx: Transaction): Promise<void> {
    await this.rooms.removePlayer(room.room_id, userId, tx)
    const remaining = room.players.filter((player) => player.user_id !== userId)
    const nextOwner = room.owner_id === userId ? remaining[0]?.user_id : undefined
    const emptied = remaining.length === 0
    await this.rooms.update(room.room_id, { owner_id: nextOwner, is_closed: emptied ? true : undefined }, nowIso(), tx)
    if (emptied) await this.invites.deletePendingForRoom(room.room_id, tx)
  }

  async #require(roomId: string, q: Queryable = this.db): Promise<Room> {
    const room = await this.rooms.find(roomId, q)
    if (!room) throw roomNotFound()
    return room
  }
}

export function roomNotFound(): ApiError {
  return notFound('Room not found')
}
