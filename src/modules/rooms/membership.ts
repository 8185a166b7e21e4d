import { BatchedReads } from '../../db/batched-reads'
import { batchRows, inBatches, nextTurn } from '../../db/batches'
import type { Database, Queryable, Transaction } from '../../db/database'
import { nowIso } from '../../lib/clock'
import { ApiError, conflict, notFound } from '../../shared/errors'
import type { EventLog } from '../events/service'
import { chatStream, type LobbyEvent, roomStream, userStream } from '../events/model'
import type { User } from '../users/model'
import type { InvitationStore } from './invitation-store'
import type { Room } from './model'
import type { RoomStore, Seating, Standing } from './store'

/** What the caller is to a room's streams (seatedAccess). */
export interface SeatedAccess {
  seating: Seating
  isMember: boolean
  invitedUntil?: string
}

/** What the caller is to a room they may see. */
export interface RoomAccess {
  room: Room
  isMember: boolean
  /** The owner or an admin: may invite, kick and close. */
  canManage: boolean
  /** For one who sees the room only by an invitation: when that runs out. */
  invitedUntil?: string
}

/**
 * Who is in which room, and the one place that changes it. Every change to a room runs in a
 * transaction holding that room's lock (withRoom), so concurrent joins, leaves, kicks, closes and
 * deletions on any number of instances apply one after the other; players are seated and unseated
 * only here. Rooms and invitations (service.ts, invitation-service.ts) build on it, never the other way.
 */
export class MembershipService {
  /** Rooms' players, read together when many are asked for at once (a resume storm). */
  readonly #seating: BatchedReads<string, Seating>

  constructor(
    private readonly deps: {
      db: Database
      roomStore: RoomStore
      invitationStore: InvitationStore
      events: EventLog
      /** Open rooms one user may play in at once (ROOM_SEAT_QUOTA). */
      seatQuota: number
    },
  ) {
    this.#seating = new BatchedReads((roomIds) => deps.roomStore.seatingOf(roomIds, deps.db))
  }

  /** The room as the caller may see it (member, invitee or admin); 404, as if it did not exist, otherwise. */
  async access(user: User, roomId: string, q: Queryable): Promise<RoomAccess> {
    const room = await this.deps.roomStore.find(roomId, q)
    const isMember = room?.players.some((player) => player.user_id === user.user_id) ?? false
    const invitedUntil = await this.#mustSee(user, roomId, room !== undefined, isMember, q)
    return { room: room!, isMember, canManage: user.user_role === 'admin' || room!.owner_id === user.user_id, invitedUntil }
  }

  /** The same rule as access(), from who plays in the room alone: what the realtime layer asks for each room stream a socket follows. */
  async seatedAccess(user: User, roomId: string): Promise<SeatedAccess> {
    const seating = await this.#seating.read(roomId)
    const isMember = seating?.players.includes(user.user_id) ?? false
    const invitedUntil = await this.#mustSee(user, roomId, seating !== undefined, isMember, this.deps.db)
    return { seating: seating!, isMember, invitedUntil }
  }

  /**
   * Who may see a room: its players, admins, and whoever holds a live invitation to it; 404, as if
   * it did not exist, for anyone else. Answers when the invitation runs out, for one who sees the
   * room only by it.
   */
  async #mustSee(user: User, roomId: string, exists: boolean, isMember: boolean, q: Queryable): Promise<string | undefined> {
    const isAdmin = user.user_role === 'admin'
    const invitedUntil = exists && !isAdmin && !isMember ? await this.deps.invitationStore.invitedUntil(roomId, user.user_id, q) : undefined
    if (!exists || !(isAdmin || isMember || invitedUntil)) throw roomNotFound()
    return invitedUntil
  }

  /** Runs `work` holding the room's lock, with the caller's access to it read inside the lock. */
  withRoom<Result>(user: User, roomId: string, work: (access: RoomAccess, tx: Transaction) => Promise<Result>): Promise<Result> {
    return this.deps.db.transaction(async (tx) => {
      await lockRoom(tx, roomId)
      return work(await this.access(user, roomId, tx), tx)
    })
  }

  /**
   * Runs `work` holding the room's lock, with whether each of `users` plays in it and whether it is
   * closed: one small read under the lock where the room's players and their names are not needed
   * (the chat's messages, written together). Each user's standing, or the 404 that access() would
   * answer one who may not see the room.
   */
  withStandings<Result>(users: User[], roomId: string, work: (standings: Array<Standing | ApiError>, tx: Transaction) => Promise<Result>): Promise<Result> {
    return this.deps.db.transaction(async (tx) => {
      await lockRoom(tx, roomId)
      return work(await this.#standings(users, roomId, tx), tx)
    })
  }

  /** Whether the caller plays in the room and whether it is closed; 404 for one who may not see it. */
  async standing(user: User, roomId: string, q: Queryable): Promise<Standing> {
    const [standing] = await this.#standings([user], roomId, q)
    if (standing instanceof ApiError) throw standing
    return standing!
  }

  /** Each user's standing in the room, from one read of it for all of them, or the 404 that access() would answer one who may not see it. */
  async #standings(users: User[], roomId: string, q: Queryable): Promise<Array<Standing | ApiError>> {
    const distinct = [...new Map(users.map((user) => [user.user_id, user])).values()]
    const room = await this.deps.roomStore.playersAmong(
      roomId,
      distinct.map((user) => user.user_id),
      q,
    )
    const standingOf = new Map<string, Standing | ApiError>()
    for (const user of distinct) {
      const isMember = room?.players.has(user.user_id) ?? false
      const refusal = isMember ? undefined : await this.#mustSee(user, roomId, room !== undefined, false, q).then(() => undefined, refusalOnly)
      standingOf.set(user.user_id, refusal ?? { isMember, isClosed: room!.isClosed })
    }
    return users.map((user) => standingOf.get(user.user_id)!)
  }

  /** Runs `work` holding the lock of a room known by id alone (the caller checks who may act). */
  withRoomLocked<Result>(roomId: string, work: (tx: Transaction) => Promise<Result>): Promise<Result> {
    return this.deps.db.transaction(async (tx) => {
      await lockRoom(tx, roomId)
      return work(tx)
    })
  }

  /**
   * Refuses a seat past ROOM_SEAT_QUOTA open rooms, under the user's own lock (taken after any
   * room's), so that seats taken at once in different rooms count one after the other.
   */
  async assertSeatFree(userId: string, tx: Transaction): Promise<void> {
    await tx.lock(`seats-of:${userId}`)
    const { seatQuota } = this.deps
    if ((await this.deps.roomStore.countOpenSeats(userId, tx)) >= seatQuota) throw conflict('quota_reached', `You play in ${seatQuota} open rooms, the most allowed; leave one first`)
  }

  /** Seats a player, inside withRoom, within ROOM_SEAT_QUOTA; answers the room as it now is. */
  async seat(roomId: string, userId: string, gameRole: string, now: string, tx: Transaction): Promise<Room> {
    await this.assertSeatFree(userId, tx)
    await this.deps.roomStore.addPlayer(roomId, userId, gameRole, now, tx)
    await this.deps.roomStore.update(roomId, {}, now, tx)
    const room = await this.require(roomId, tx)
    const stream = roomStream(roomId)
    const joined: LobbyEvent = { type: 'member_joined', room_id: roomId, user_id: userId, game_role: gameRole }
    // On the chat stream too: its readers learn there who can read it now, and whether they are online.
    await this.deps.events.emit(tx, [stream, joined], [chatStream(roomId), joined])
    if (room.is_ready) await this.deps.events.emit(tx, [stream, { type: 'room_ready', room_id: roomId }])
    return room
  }

  /**
   * Unseats a player, inside withRoom. The last one out closes the room, withdrawing its pending
   * invitations as a close does; an owner leaving hands it to the earliest-joined player left.
   */
  async unseat(room: Room, userId: string, how: 'left' | 'kicked', tx: Transaction): Promise<void> {
    const roomId = room.room_id
    await this.deps.roomStore.removePlayer(roomId, userId, tx)
    const remaining = room.players.filter((player) => player.user_id !== userId)
    const nextOwner = room.owner_id === userId ? remaining[0]?.user_id : undefined
    const emptied = remaining.length === 0
    await this.deps.roomStore.update(roomId, { owner_id: nextOwner, is_closed: emptied ? true : undefined }, nowIso(), tx)
    const stream = roomStream(roomId)
    const gone: LobbyEvent =
      how === 'kicked' ? { type: 'member_kicked', room_id: roomId, user_id: userId } : { type: 'member_left', room_id: roomId, user_id: userId }
    // On the chat stream too: its subscribers learn there, in the chat's own order, who stops reading it.
    const events: Array<[string, LobbyEvent]> = [
      [stream, gone],
      [chatStream(roomId), gone],
    ]
    if (how === 'kicked') events.push([userStream(userId), { type: 'removed_from_room', room_id: roomId, reason: 'kicked' }])
    if (nextOwner !== undefined) events.push([stream, { type: 'owner_changed', room_id: roomId, owner_id: nextOwner }])
    if (room.is_ready && !emptied) events.push([stream, { type: 'room_not_ready', room_id: roomId }])
    await this.deps.events.emit(tx, ...events)
    // A closed room emptied (its last player deleted) was closed already.
    if (emptied && !room.is_closed) await this.#closed(roomId, tx)
  }

  /** Closes a room, inside withRoom: no more invitations or joins; pending invitations are withdrawn. */
  async close(roomId: string, tx: Transaction): Promise<Room> {
    await this.deps.roomStore.update(roomId, { is_closed: true }, nowIso(), tx)
    await this.#closed(roomId, tx)
    return this.require(roomId, tx)
  }

  /** What closing means, however it happens: pending invitations withdrawn, their invitees and the members told. */
  async #closed(roomId: string, tx: Transaction): Promise<void> {
    const withdrawn = await this.deps.invitationStore.deletePendingForRoom(roomId, tx)
    const closed: LobbyEvent = { type: 'room_closed', room_id: roomId }
    await this.deps.events.emit(
      tx,
      [roomStream(roomId), closed],
      // On the chat stream too: its readers learn there that nobody writes or types in it any more.
      [chatStream(roomId), closed],
      ...withdrawn.map(({ invite_id, receiver_id }): [string, LobbyEvent] => [
        userStream(receiver_id),
        { type: 'invitation_revoked', invite_id, room_id: roomId },
      ]),
    )
  }

  /**
   * For a user's deletion: leaves every open room they play in, as a leave does, one room (and
   * transaction) at a time, unless the account was restored meanwhile.
   */
  async leaveOpenRooms(userId: string, stillDeleted: (q: Queryable) => Promise<boolean>): Promise<void> {
    const { roomStore, db } = this.deps
    for (const roomId of await roomStore.openRoomIdsOf(userId, db)) {
      const left = await this.withRoomLocked(roomId, async (tx) => {
        if (!(await stillDeleted(tx))) return false
        const room = await this.require(roomId, tx)
        if (room.players.some((player) => player.user_id === userId)) await this.unseat(room, userId, 'left', tx)
        return true
      })
      if (!left) return
      await nextTurn()
    }
  }

  /** For an account's erasure: its seats in closed rooms, where nobody plays, go in batches. */
  async forgetClosedSeats(userId: string): Promise<void> {
    const { roomStore, db } = this.deps
    await inBatches((limit) => roomStore.deleteClosedSeats(userId, limit, db), batchRows(db))
  }

  async require(roomId: string, q: Queryable): Promise<Room> {
    const room = await this.deps.roomStore.find(roomId, q)
    if (!room) throw roomNotFound()
    return room
  }
}

/** The one spelling of a room's lock. */
function lockRoom(tx: Transaction, roomId: string): Promise<void> {
  return tx.lock(`room:${roomId}`)
}

/** An ApiError as a value (a refusal of one among several); anything else is thrown on. */
const refusalOnly = (error: unknown): ApiError => {
  if (error instanceof ApiError) return error
  throw error
}

export function roomNotFound(): ApiError {
  return notFound('Room not found')
}
