import { batchRows, inBatches } from '../../db/batches'
import { type Database, type Queryable, type Transaction, UniqueViolation } from '../../db/database'
import type { UserRateLimiter } from '../../db/rate-limits'
import { isoAfter, nowIso } from '../../lib/clock'
import { randomToken } from '../../lib/crypto'
import { conflict, forbidden, notFound } from '../../shared/errors'
import { type LobbyEvent, userStream } from '../events/model'
import type { EventLog } from '../events/service'
import type { User } from '../users/model'
import type { Invitation, InviteFilter } from './invitation-model'
import type { InvitationRecord, InvitationStore } from './invitation-store'
import type { MembershipService } from './membership'
import type { Room } from './model'

const CT_BYTES = 24

/**
 * Invitations: made by a room's owner or an admin for one active user, redeemed once by that user
 * with the `ct` token before it expires. Only the receiver and the inviter ever see the `ct`.
 */
export class InvitationService {
  constructor(
    private readonly deps: {
      db: Database
      invitationStore: InvitationStore
      membership: MembershipService
      events: EventLog
      /** Who may be invited: the users domain answers, by name. */
      users: { findActiveByName(username: string, q: Queryable): Promise<User | undefined> }
      sent: UserRateLimiter
      /** Seconds an invitation stays usable, and settled ones stay listed; pending invitations one room may have. */
      policy: { ttl: number; retention: number; pendingLimit: number }
    },
  ) {}

  /** For a deleted account: the pending invitations it received or sent are withdrawn, and their receivers told; not once it is restored. */
  withdrawPendingOf(userId: string, stillDeleted: (q: Queryable) => Promise<boolean>): Promise<number> {
    const { db, invitationStore, events } = this.deps
    return inBatches(
      (limit) =>
        db.transaction(async (tx) => {
          if (!(await stillDeleted(tx))) return 0
          const withdrawn = await invitationStore.deletePendingOfUser(userId, limit, tx)
          await events.emit(
            tx,
            ...withdrawn.map(({ invite_id, receiver_id, room_id }): [string, LobbyEvent] => [
              userStream(receiver_id),
              { type: 'invitation_revoked', invite_id, room_id },
            ]),
          )
          return withdrawn.length
        }),
      batchRows(db),
    )
  }

  /**
   * Deletes invitations accepted, declined or expired more than INVITE_RETENTION seconds ago, so
   * that nobody's list (and its count) grows without end.
   */
  purgeSettled(now = Date.now(), batchSize = batchRows(this.deps.db)): Promise<number> {
    const before = isoAfter(-this.deps.policy.retention, now)
    return inBatches((limit) => this.deps.invitationStore.deleteSettled(before, limit), batchSize)
  }

  /** Every try counts against INVITE_RATE_LIMIT, refused or not: the answers tell which names are active users. */
  async invite(inviter: User, roomId: string, userName: string, playerRole: string, inviteId = Bun.randomUUIDv7()): Promise<Invitation> {
    await this.deps.sent.consume(inviter.user_id)
    const invitation = await this.deps.membership.withRoom(inviter, roomId, async ({ room, canManage }, tx) => {
      if (!canManage) throw forbidden('not_room_manager', 'Only the owner or an admin may invite')
      if (room.is_closed) throw conflict('room_closed', 'The room is closed')
      const receiver = await this.deps.users.findActiveByName(userName, tx)
      if (!receiver) throw conflict('receiver_unavailable', 'There is no active user with that name')
      if (room.players.some((player) => player.user_id === receiver.user_id)) throw conflict('already_in_room', 'That user is already in the room')
      const clock = Date.now()
      const now = new Date(clock).toISOString()
      await this.deps.invitationStore.expire(roomId, receiver.user_id, now, tx)
      // A room's pending invitations are withdrawn in one transaction when it closes: there are never many.
      const { pendingLimit } = this.deps.policy
      if ((await this.deps.invitationStore.countPending(roomId, now, tx)) >= pendingLimit)
        throw conflict('quota_reached', `The room has ${pendingLimit} pending invitations, the most allowed; revoke one or wait for some to expire`)
      const record: InvitationRecord = {
        invite_id: inviteId,
        room_id: roomId,
        inviter_id: inviter.user_id,
        receiver_id: receiver.user_id,
        player_role: playerRole,
        status: 'pending',
        ct: randomToken(CT_BYTES),
        created_at: now,
        updated_at: now,
        expires_at: isoAfter(this.deps.policy.ttl, clock),
      }
      try {
        await this.deps.invitationStore.insert(record, tx)
      } catch (error) {
        throw error instanceof UniqueViolation ? conflict('already_invited', 'That user already has a pending invitation to this room') : error
      }
      const { invite_id, inviter_id, player_role, expires_at } = record
      await this.deps.events.emit(tx, [
        userStream(receiver.user_id),
        { type: 'invitation_received', invite_id, room_id: roomId, inviter_id, player_role, expires_at },
      ])
      return record
    })
    return present(invitation, inviter.user_id)
  }

  /** Redeems `ct`: exactly once, by its receiver, for its room, before expiry, while a seat is free. */
  async join(user: User, roomId: string, ct: string): Promise<Room> {
    return this.deps.membership.withRoom(user, roomId, async ({ room, isMember }, tx) => {
      const invitation = await this.deps.invitationStore.findByCt(ct, tx)
      if (!invitation || invitation.room_id !== roomId || invitation.receiver_id !== user.user_id)
        throw forbidden('not_invitee', 'This invitation token is not valid for you in this room')
      if (isMember) throw conflict('already_in_room', 'You are already in this room')
      const now = nowIso()
      if (invitation.status !== 'pending') throw conflict('invitation_settled', `The invitation is ${invitation.status}`)
      if (invitation.expires_at <= now) throw conflict('invitation_expired', 'The invitation has expired')
      if (room.is_closed) throw conflict('room_closed', 'The room is closed')
      if (room.players.length >= room.max_players) throw conflict('room_full', 'The room is full')
      if (!(await this.deps.invitationStore.settle(invitation.invite_id, 'accepted', now, tx))) throw conflict('invitation_settled', 'The invitation was already used')
      const { invite_id, inviter_id } = invitation
      const accepted: LobbyEvent = { type: 'invitation_accepted', invite_id, room_id: roomId, receiver_id: user.user_id }
      // The receiver's stream too: their other devices drop the invitation from their list.
      await this.deps.events.emit(tx, [userStream(inviter_id), accepted], [userStream(user.user_id), accepted])
      return this.deps.membership.seat(roomId, user.user_id, invitation.player_role, now, tx)
    })
  }

  async listReceived(user: User, filter: InviteFilter) {
    return this.#list('receiver_id', user, filter)
  }

  async listSent(user: User, filter: InviteFilter) {
    return this.#list('inviter_id', user, filter)
  }

  async decline(user: User, inviteId: string): Promise<Invitation> {
    return this.#withInvitation(user, inviteId, async (invitation, tx) => {
      if (invitation.receiver_id !== user.user_id) throw forbidden('not_invitee', 'Only the invited user may decline')
      const now = nowIso()
      if (invitation.status !== 'pending' || invitation.expires_at <= now || !(await this.deps.invitationStore.settle(inviteId, 'declined', now, tx)))
        throw conflict('invitation_settled', 'Only a pending invitation can be declined')
      const declined: LobbyEvent = { type: 'invitation_declined', invite_id: inviteId, room_id: invitation.room_id, receiver_id: user.user_id }
      await this.deps.events.emit(tx, [userStream(invitation.inviter_id), declined], [userStream(user.user_id), declined])
      return present({ ...invitation, status: 'declined', updated_at: now }, user.user_id)
    })
  }

  /** Withdraws a pending invitation: its inviter, the room's owner or an admin may. */
  async revoke(user: User, inviteId: string): Promise<void> {
    await this.#withInvitation(user, inviteId, async (invitation, tx, roomOwnerId) => {
      if (user.user_role !== 'admin' && user.user_id !== invitation.inviter_id && user.user_id !== roomOwnerId)
        throw forbidden('not_room_manager', 'Only the inviter, the room owner or an admin may revoke an invitation')
      if (invitation.status !== 'pending') throw conflict('invitation_settled', 'Only a pending invitation can be revoked')
      await this.deps.invitationStore.delete(inviteId, tx)
      await this.deps.events.emit(tx, [userStream(invitation.receiver_id), { type: 'invitation_revoked', invite_id: inviteId, room_id: invitation.room_id }])
    })
  }

  async #list(party: 'receiver_id' | 'inviter_id', user: User, filter: InviteFilter) {
    const now = nowIso()
    const { invitations, total } = await this.deps.invitationStore.list(party, user.user_id, filter, now)
    return { invitations: invitations.map((invitation) => present(invitation, user.user_id, now)), total }
  }

  /**
   * Runs `work` holding the lock of the invitation's room, with the invitation read inside it, if the
   * caller is its receiver, its inviter, the room's owner or an admin (404 for anyone else).
   */
  async #withInvitation<Result>(
    user: User,
    inviteId: string,
    work: (invitation: InvitationRecord, tx: Transaction, roomOwnerId: string | null | undefined) => Promise<Result>,
  ): Promise<Result> {
    const invitationNotFound = () => notFound('Invitation not found')
    const roomId = (await this.deps.invitationStore.find(inviteId, this.deps.db))?.room_id
    if (roomId === undefined) throw invitationNotFound()
    return this.deps.membership.withRoomLocked(roomId, async (tx) => {
      const invitation = await this.deps.invitationStore.find(inviteId, tx)
      const roomOwnerId = invitation && (await this.deps.membership.require(invitation.room_id, tx)).owner_id
      const involved = [invitation?.receiver_id, invitation?.inviter_id, roomOwnerId].includes(user.user_id)
      if (!invitation || !(involved || user.user_role === 'admin')) throw invitationNotFound()
      return work(invitation, tx, roomOwnerId)
    })
  }
}

/** The client's view: `is_accepted`, a pending invitation past its expiry shown as expired, `ct` only for receiver and inviter. */
export function present(invitation: InvitationRecord, viewerId: string, now = nowIso()): Invitation {
  const expired = invitation.status === 'pending' && invitation.expires_at <= now
  const mayUseCt = viewerId === invitation.receiver_id || viewerId === invitation.inviter_id
  return {
    ...invitation,
    status: expired ? 'expired' : invitation.status,
    is_accepted: invitation.status === 'accepted',
    ct: mayUseCt ? invitation.ct : null,
  }
}
