import type { Database, Queryable } from '../../db/database'
import { readPage } from '../../db/page'
import { Where } from '../../db/where'
import { PAGE_SIZE } from '../../shared/model'
import type { InvitationStatus, InviteFilter } from './invitation-model'

export interface InvitationRecord {
  invite_id: string
  room_id: string
  inviter_id: string
  receiver_id: string
  player_role: string
  status: InvitationStatus
  ct: string
  created_at: string
  updated_at: string
  expires_at: string
}

const COLUMNS = 'invite_id, room_id, inviter_id, receiver_id, player_role, status, ct, created_at, updated_at, expires_at'

export class InvitationStore {
  constructor(private readonly db: Database) {}

  /** Throws UniqueViolation when the receiver already has a pending invitation to the room. */
  async insert(invitation: InvitationRecord, q: Queryable): Promise<void> {
    await q.run(`INSERT INTO invitations (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [
      invitation.invite_id,
      invitation.room_id,
      invitation.inviter_id,
      invitation.receiver_id,
      invitation.player_role,
      invitation.status,
      invitation.ct,
      invitation.created_at,
      invitation.updated_at,
      invitation.expires_at,
    ])
  }

  find(inviteId: string, q: Queryable): Promise<InvitationRecord | undefined> {
    return q.get<InvitationRecord>(`SELECT ${COLUMNS} FROM invitations WHERE invite_id = $1`, [inviteId])
  }

  findByCt(ct: string, q: Queryable): Promise<InvitationRecord | undefined> {
    return q.get<InvitationRecord>(`SELECT ${COLUMNS} FROM invitations WHERE ct = $1`, [ct])
  }

  /** Whether the user holds a pending invitation to the room (expired or not): that lets them see it. */
  /** When the user's pending invitation to the room runs out (undefined: not invited). */
  async invitedUntil(roomId: string, userId: string, q: Queryable): Promise<string | undefined> {
    const row = await q.get<{ expires_at: string | null }>(
      "SELECT MAX(expires_at) AS expires_at FROM invitations WHERE room_id = $1 AND receiver_id = $2 AND status = 'pending'",
      [roomId, userId],
    )
    return row?.expires_at ?? undefined
  }

  /** Settles pending invitations past their expiry, so that they no longer block a new one. */
  async expire(roomId: string, receiverId: string, now: string, q: Queryable): Promise<void> {
    await q.run(
      "UPDATE invitations SET status = 'expired', updated_at = $3 WHERE room_id = $1 AND receiver_id = $2 AND status = 'pending' AND expires_at <= $3",
      [roomId, receiverId, now],
    )
  }

  /** The room's pending invitations, those past their expiry marked expired first (so they no longer count). */
  async countPending(roomId: string, now: string, q: Queryable): Promise<number> {
    await q.run("UPDATE invitations SET status = 'expired', updated_at = $2 WHERE room_id = $1 AND status = 'pending' AND expires_at <= $2", [roomId, now])
    const row = await q.get<{ total: number }>("SELECT CAST(count(*) AS INTEGER) AS total FROM invitations WHERE room_id = $1 AND status = 'pending'", [roomId])
    return row?.total ?? 0
  }

  /** Moves a pending invitation to `status`; false when it was no longer pending (someone else got there first). */
  async settle(inviteId: string, status: 'accepted' | 'declined', now: string, q: Queryable): Promise<boolean> {
    const changed = await q.run("UPDATE invitations SET status = $2, updated_at = $3 WHERE invite_id = $1 AND status = 'pending'", [
      inviteId,
      status,
      now,
    ])
    return changed === 1
  }

  async delete(inviteId: string, q: Queryable): Promise<void> {
    await q.run('DELETE FROM invitations WHERE invite_id = $1', [inviteId])
  }

  /** Deletes up to `limit` invitations settled (or expired) before `before`: no longer usable, and past their retention. */
  async deleteSettled(before: string, limit: number): Promise<number> {
    return this.db.run(
      `DELETE FROM invitations WHERE invite_id IN (
         SELECT invite_id FROM invitations WHERE updated_at <= $1 AND (status <> 'pending' OR expires_at <= $1) LIMIT $2)`,
      [before, limit],
    )
  }

  /** Deletes the room's pending invitations; answers which went, and to whom. */
  deletePendingForRoom(roomId: string, q: Queryable): Promise<Array<{ invite_id: string; receiver_id: string }>> {
    return q.all("DELETE FROM invitations WHERE room_id = $1 AND status = 'pending' RETURNING invite_id, receiver_id", [roomId])
  }

  /** Up to `limit` pending invitations a user received or sent, deleted: for the deletion of their account. */
  deletePendingOfUser(userId: string, limit: number, q: Queryable): Promise<Array<{ invite_id: string; receiver_id: string; room_id: string }>> {
    return q.all(
      `DELETE FROM invitations WHERE invite_id IN (
         SELECT invite_id FROM invitations WHERE status = 'pending' AND (receiver_id = $1 OR inviter_id = $1) LIMIT $2)
       RETURNING invite_id, receiver_id, room_id`,
      [userId, limit],
    )
  }

  /** Invitations received by (`receiver_id`) or sent by (`inviter_id`) a user, newest first. */
  async list(party: 'receiver_id' | 'inviter_id', userId: string, filter: InviteFilter, now: string): Promise<{ invitations: InvitationRecord[]; total: number }> {
    const where = new Where().add(`${party} = ?`, userId)
    if (filter.inviter_id !== undefined) where.add('inviter_id = ?', filter.inviter_id)
    if (filter.player_role !== undefined) where.add('player_role = ?', filter.player_role)
    if (filter.is_accepted !== undefined) where.add(filter.is_accepted ? "status = 'accepted'" : "status <> 'accepted'")
    // Statuses as a client sees them: a pending invitation past its expiry reads as expired.
    if (filter.status === 'pending') where.add("status = 'pending' AND expires_at > ?", now)
    else if (filter.status === 'expired') where.add("(status = 'expired' OR (status = 'pending' AND expires_at <= ?))", now)
    else if (filter.status !== undefined) where.add('status = ?', filter.status)
    const whereClause = String(where)
    const { params } = where
    const page = await readPage<InvitationRecord>(
      this.db.reader,
      {
        rows: `SELECT ${COLUMNS} FROM invitations ${whereClause} ORDER BY created_at DESC, invite_id DESC`,
        count: `SELECT CAST(count(*) AS INTEGER) AS total FROM invitations ${whereClause}`,
        params,
      },
      filter.limit ?? PAGE_SIZE,
      filter.offset ?? 0,
    )
    return { invitations: page.rows, total: page.total }
  }
}
