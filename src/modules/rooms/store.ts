import { inList } from '../../db/in-list'
import type { Database, Queryable } from '../../db/database'
import { readPage } from '../../db/page'
import { Where } from '../../db/where'
import { PAGE_SIZE } from '../../shared/model'
import type { Player, Room, RoomFilter, Seat } from './model'

interface RoomRow {
  room_id: string
  room_name: string
  owner_id: string | null
  max_players: number
  is_closed: boolean | number
  created_at: string
  updated_at: string
}

interface PlayerRow extends Player {
  room_id: string
}

export interface NewRoom {
  room_id: string
  room_name: string
  owner_id: string
  max_players: number
  created_at: string
}

const ROOM_COLUMNS = 'r.room_id, r.room_name, r.owner_id, r.max_players, r.is_closed, r.created_at, r.updated_at'
const PLAYER_COUNT = '(SELECT count(*) FROM room_players p WHERE p.room_id = r.room_id)'

/** One user's place in a room: all a chat message depends on. */
export interface Standing {
  isMember: boolean
  isClosed: boolean
}

/** Who plays in a room, and whether it is closed: all that access to its streams depends on. */
export interface Seating {
  is_closed: boolean
  players: string[]
}

export class RoomStore {
  constructor(private readonly db: Database) {}

  async insert(room: NewRoom, creatorRole: string, q: Queryable): Promise<void> {
    await q.run(
      'INSERT INTO rooms (room_id, room_name, owner_id, max_players, is_closed, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)',
      [room.room_id, room.room_name, room.owner_id, room.max_players, false, room.created_at],
    )
    await this.addPlayer(room.room_id, room.owner_id, creatorRole, room.created_at, q)
  }

  async find(roomId: string, q: Queryable): Promise<Room | undefined> {
    const row = await q.get<RoomRow>(`SELECT ${ROOM_COLUMNS} FROM rooms r WHERE r.room_id = $1`, [roomId])
    return row && (await this.#withPlayers([row], q))[0]
  }

  /** Which of `userIds` play in the room, and whether it is closed; undefined when there is no such room. */
  async playersAmong(roomId: string, userIds: string[], q: Queryable): Promise<{ isClosed: boolean; players: Set<string> } | undefined> {
    const { marks, params } = inList(userIds, 2)
    const rows = await q.all<{ is_closed: boolean | number; user_id: string | null }>(
      `SELECT r.is_closed, p.user_id FROM rooms r LEFT JOIN room_players p ON p.room_id = r.room_id AND p.user_id IN (${marks}) WHERE r.room_id = $1`,
      [roomId, ...params],
    )
    if (rows.length === 0) return undefined
    return { isClosed: Boolean(rows[0]!.is_closed), players: new Set(rows.flatMap((row) => (row.user_id === null ? [] : [row.user_id]))) }
  }

  /** Who plays in each room of `roomIds`, and whether it is closed; rooms that do not exist are left out. */
  async seatingOf(roomIds: string[], q: Queryable): Promise<Map<string, Seating>> {
    const { marks, params } = inList(roomIds)
    const rows = await q.all<{ room_id: string; is_closed: boolean | number; user_id: string | null }>(
      `SELECT r.room_id, r.is_closed, p.user_id FROM rooms r LEFT JOIN room_players p ON p.room_id = r.room_id WHERE r.room_id IN (${marks})`,
      params,
    )
    const seating = new Map<string, Seating>()
    for (const { room_id, is_closed, user_id } of rows) {
      let room = seating.get(room_id)
      if (!room) seating.set(room_id, (room = { is_closed: Boolean(is_closed), players: [] }))
      if (user_id !== null) room.players.push(user_id)
    }
    return seating
  }

  /** Rooms matching the filter, newest first; `memberId` keeps only the rooms that user plays in. */
  async list(filter: RoomFilter, memberId?: string): Promise<{ rooms: Room[]; total: number }> {
    const where = new Where()
    // A member's rooms are found from their seats (indexed by user), not by testing every room.
    const from = memberId === undefined ? 'rooms r' : 'room_players m JOIN rooms r ON r.room_id = m.room_id'
    if (memberId !== undefined) where.add('m.user_id = ?', memberId)
    if (filter.is_closed !== undefined) where.add('r.is_closed = ?', filter.is_closed)
    if (filter.is_ready !== undefined) where.add(`${PLAYER_COUNT} ${filter.is_ready ? '>=' : '<'} r.max_players`)
    const { params } = where
    const page = await readPage<RoomRow>(
      this.db.reader,
      {
        rows: `SELECT ${ROOM_COLUMNS} FROM ${from} ${where} ORDER BY r.created_at DESC, r.room_id DESC`,
        count: `SELECT CAST(count(*) AS INTEGER) AS total FROM ${from} ${where}`,
        params,
      },
      filter.limit ?? PAGE_SIZE,
      filter.offset ?? 0,
    )
    return { rooms: await this.#withPlayers(page.rows, this.db.reader), total: page.total }
  }

  async countOpenOwnedBy(ownerId: string, q: Queryable): Promise<number> {
    const row = await q.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM rooms WHERE owner_id = $1 AND is_closed = $2', [
      ownerId,
      false,
    ])
    return row?.total ?? 0
  }

  async countOpen(): Promise<number> {
    const row = await this.db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM rooms WHERE is_closed = $1', [false])
    return row?.total ?? 0
  }

  async addPlayer(roomId: string, userId: string, gameRole: string, joinedAt: string, q: Queryable): Promise<void> {
    await q.run('INSERT INTO room_players (room_id, user_id, game_role, joined_at) VALUES ($1, $2, $3, $4)', [roomId, userId, gameRole, joinedAt])
  }

  async removePlayer(roomId: string, userId: string, q: Queryable): Promise<boolean> {
    return (await q.run('DELETE FROM room_players WHERE room_id = $1 AND user_id = $2', [roomId, userId])) === 1
  }

  async update(roomId: string, changes: { owner_id?: string; is_closed?: boolean }, updatedAt: string, q: Queryable): Promise<void> {
    await q.run(
      'UPDATE rooms SET updated_at = $2, owner_id = COALESCE($3, owner_id), is_closed = COALESCE($4, is_closed) WHERE room_id = $1',
      [roomId, updatedAt, changes.owner_id ?? null, changes.is_closed ?? null],
    )
    // Its seats say so too: a user's open rooms are found by index among all their seats.
    if (changes.is_closed) await q.run('UPDATE room_players SET room_closed = $2 WHERE room_id = $1', [roomId, true])
  }

  /** Ids of the open rooms a user plays in, in a stable order (so that locks on them are taken in it): the rooms that hear of their presence. */
  async openRoomIdsOf(userId: string, q: Queryable): Promise<string[]> {
    return (await this.openRoomIdsOfEach([userId], q)).get(userId) ?? []
  }

  /** The same for each of `userIds`: a user in no open room is left out. */
  async openRoomIdsOfEach(userIds: string[], q: Queryable): Promise<Map<string, string[]>> {
    const byUser = new Map<string, string[]>()
    if (userIds.length === 0) return byUser
    const { marks, params } = inList(userIds, 2)
    const rows = await q.all<{ user_id: string; room_id: string }>(
      `SELECT user_id, room_id FROM room_players WHERE room_closed = $1 AND user_id IN (${marks}) ORDER BY user_id, room_id`,
      [false, ...params],
    )
    for (const { user_id, room_id } of rows) {
      const rooms = byUser.get(user_id)
      if (rooms) rooms.push(room_id)
      else byUser.set(user_id, [room_id])
    }
    return byUser
  }

  async countOpenSeats(userId: string, q: Queryable): Promise<number> {
    const row = await q.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM room_players WHERE user_id = $1 AND room_closed = $2', [
      userId,
      false,
    ])
    return row?.total ?? 0
  }

  /** Deletes up to `limit` of the user's seats in closed rooms (their account is going; nobody plays there). */
  deleteClosedSeats(userId: string, limit: number, q: Queryable): Promise<number> {
    return q.run(
      'DELETE FROM room_players WHERE user_id = $1 AND room_id IN (SELECT room_id FROM room_players WHERE user_id = $1 AND room_closed = $2 LIMIT $3)',
      [userId, true, limit],
    )
  }

  /** Up to `limit` of a user's seats, in open and closed rooms, in room order after `afterRoomId`. */
  async seatsOf(userId: string, afterRoomId: string, limit: number, q: Queryable): Promise<Seat[]> {
    const rows = await q.all<Seat & { is_closed: boolean | number; is_owner: boolean | number }>(
      `SELECT r.room_id, r.room_name, r.is_closed, r.owner_id = $1 AS is_owner, p.game_role, p.joined_at
         FROM room_players p JOIN rooms r ON r.room_id = p.room_id
        WHERE p.user_id = $1 AND p.room_id > $2
        ORDER BY p.room_id LIMIT $3`,
      [userId, afterRoomId, limit],
    )
    return rows.map((row) => ({ ...row, is_closed: Boolean(row.is_closed), is_owner: Boolean(row.is_owner) }))
  }

  async #withPlayers(rows: RoomRow[], q: Queryable): Promise<Room[]> {
    if (rows.length === 0) return []
    const placeholders = rows.map((_, index) => `$${index + 1}`).join(', ')
    const players = await q.all<PlayerRow>(
      `SELECT p.room_id, p.user_id, u.username, u.display_name, u.avatar_url, p.game_role, p.joined_at
         FROM room_players p JOIN users u ON u.user_id = p.user_id
        WHERE p.room_id IN (${placeholders})
        ORDER BY p.joined_at, p.user_id`,
      rows.map((row) => row.room_id),
    )
    const byRoom = Map.groupBy(players, (player) => player.room_id)
    return rows.map((row) => {
      const seated = (byRoom.get(row.room_id) ?? []).map(({ room_id: _, ...player }) => player)
      return {
        ...row,
        max_players: Number(row.max_players),
        is_closed: Boolean(row.is_closed),
        is_ready: seated.length >= Number(row.max_players),
        players: seated,
      }
    })
  }
}
