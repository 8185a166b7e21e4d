import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { present } from '../../src/modules/rooms/invitation-service'
import { closeTestResources, createTestApp, refusal, type Session, STORE, type TestApp } from '../support/harness'
import { lobby, roomWorld } from '../support/lobby'

afterAll(closeTestResources)

let t: TestApp
let rooms: ReturnType<typeof lobby>
let admin: Session
let host: Session
let cohost: Session
let receiver: Session
let stranger: Session
beforeAll(async () => {
  t = await createTestApp()
  rooms = lobby(t.client)
  admin = await t.client.loginAdmin()
  host = await t.client.register('inv_host')
  cohost = await t.client.register('inv_cohost')
  receiver = await t.client.register('inv_receiver')
  stranger = await t.client.register('inv_stranger')
})

const ids = (reply: { body: { invitations: Array<{ invite_id: string }> } }) => reply.body.invitations.map((invitation) => invitation.invite_id)

// The inviting and joining rules have an app and players of their own (rooms.test.ts's cast).
const joining = await roomWorld()

describe(`invitations on ${STORE}: inviting and joining`, () => {
  const { t, rooms, admin, owner, guest, other, stranger } = joining

  test('the owner invites; the answer carries a ct that the receiver redeems once for a seat with the invited role', async () => {
    const room = await rooms.createRoom(owner, { max_players: 3 })
    const reply = await t.client.post(`/rooms/${room.room_id}/invite`, { user_name: 'ROOM_GUEST', player_role: 'engineer' }, owner.access)
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({ room_id: room.room_id, inviter_id: owner.userId, receiver_id: guest.userId, player_role: 'engineer', is_accepted: false, status: 'pending' })
    expect(reply.body.ct.length).toBeGreaterThanOrEqual(22) // at least 128 bits, base64url
    expect(Date.parse(reply.body.expires_at) - Date.parse(reply.body.created_at)).toBe(604_800_000)

    const joined = await t.client.post(`/rooms/${room.room_id}/join`, { ct: reply.body.ct }, guest.access)
    expect(joined.status).toBe(200)
    expect(joined.body.players.map((player: { user_id: string; game_role: string }) => [player.user_id, player.game_role])).toEqual([
      [owner.userId, 'host'],
      [guest.userId, 'engineer'],
    ])
    const again = await t.client.post(`/rooms/${room.room_id}/join`, { ct: reply.body.ct }, guest.access)
    expect(refusal(again)).toEqual({ status: 409, error: 'conflict', reason: 'already_in_room' })
    const received = await t.client.get(`/invites/my?inviter_id=${owner.userId}&is_accepted=true`, guest.access)
    expect(received.body.invitations.map((invitation: { invite_id: string }) => invitation.invite_id)).toContain(reply.body.invite_id)
  })

  test('an admin may invite to any room; other members and invitees may not (403), strangers see nothing (404)', async () => {
    const room = await rooms.createRoom(owner)
    await rooms.seat(owner, room.room_id, guest)
    await rooms.invite(owner, room.room_id, other)
    const body = { user_name: 'room_stranger', player_role: 'operator' }
    for (const notManager of [guest, other])
      expect(refusal(await t.client.post(`/rooms/${room.room_id}/invite`, body, notManager.access))).toEqual({ status: 403, error: 'forbidden', reason: 'not_room_manager' })
    expect((await t.client.post(`/rooms/${room.room_id}/invite`, body, stranger.access)).status).toBe(404)
    expect((await t.client.post(`/rooms/${room.room_id}/invite`, body, admin.access)).status).toBe(201)
  })

  test('invitations only go to an existing, active user who is not in the room and not already invited (409)', async () => {
    const room = await rooms.createRoom(owner)
    await rooms.seat(owner, room.room_id, guest)
    await rooms.invite(owner, room.room_id, other)
    const inactive = await t.client.register('inactive_invitee')
    await t.client.post(`/users/${inactive.userId}/deactivate`, undefined, admin.access)
    const reasons = {
      nobody_at_all: 'receiver_unavailable',
      inactive_invitee: 'receiver_unavailable',
      room_guest: 'already_in_room',
      room_owner: 'already_in_room',
      room_other: 'already_invited',
    }
    for (const [user_name, reason] of Object.entries(reasons)) {
      const reply = await t.client.post(`/rooms/${room.room_id}/invite`, { user_name, player_role: 'operator' }, owner.access)
      expect({ user_name, ...refusal(reply) }).toEqual({ user_name, status: 409, error: 'conflict', reason })
    }
    expect((await t.client.post(`/rooms/${room.room_id}/invite`, { user_name: 'room_stranger', player_role: '' }, owner.access)).status).toBe(422)
  })

  test('a ct works only for its receiver and its room', async () => {
    const room = await rooms.createRoom(owner)
    const elsewhere = await rooms.createRoom(owner)
    const forGuest = await rooms.invite(owner, room.room_id, guest)
    await rooms.invite(owner, room.room_id, other)
    await rooms.invite(owner, elsewhere.room_id, guest)
    const notForYou = { status: 403, error: 'forbidden', reason: 'not_invitee' }
    expect(refusal(await t.client.post(`/rooms/${room.room_id}/join`, { ct: forGuest.ct }, other.access))).toEqual(notForYou)
    expect(refusal(await t.client.post(`/rooms/${elsewhere.room_id}/join`, { ct: forGuest.ct }, guest.access))).toEqual(notForYou)
    expect(refusal(await t.client.post(`/rooms/${room.room_id}/join`, { ct: 'made-up-token' }, guest.access))).toEqual(notForYou)
    expect((await t.client.post(`/rooms/${room.room_id}/join`, { ct: forGuest.ct }, stranger.access)).status).toBe(404)
    expect((await t.client.post(`/rooms/${room.room_id}/join`, { ct: forGuest.ct }, admin.access)).status).toBe(403)
    expect((await t.client.post(`/rooms/${room.room_id}/join`, { ct: forGuest.ct }, guest.access)).status).toBe(200)
  })

  test('an expired, declined or revoked invitation no longer opens the door; an expired one can be replaced', async () => {
    const room = await rooms.createRoom(owner)
    const expiring = await rooms.invite(owner, room.room_id, guest)
    await t.context.db.run("UPDATE invitations SET expires_at = '2000-01-01T00:00:00.000Z' WHERE invite_id = $1", [expiring.invite_id])
    const expired = await t.client.post(`/rooms/${room.room_id}/join`, { ct: expiring.ct }, guest.access)
    expect(refusal(expired)).toEqual({ status: 409, error: 'conflict', reason: 'invitation_expired' })
    expect(expired.body.message).toContain('expired')
    expect((await t.client.get('/invites/my?status=expired', guest.access)).body.invitations[0].invite_id).toBe(expiring.invite_id)
    const fresh = await rooms.invite(owner, room.room_id, guest)

    const declined = await t.client.post(`/invites/${fresh.invite_id}/decline`, undefined, guest.access)
    expect(declined.body).toMatchObject({ status: 'declined', is_accepted: false })
    expect((await t.client.post(`/rooms/${room.room_id}/join`, { ct: fresh.ct }, guest.access)).status).toBe(404)

    const revoked = await rooms.invite(owner, room.room_id, other)
    expect((await t.client.delete(`/invites/${revoked.invite_id}`, owner.access)).status).toBe(200)
    expect((await t.client.post(`/rooms/${room.room_id}/join`, { ct: revoked.ct }, other.access)).status).toBe(404)
  })

  test('a full room refuses a join (409) and reads as ready; a closed room refuses invitations and joins', async () => {
    const full = await rooms.createRoom(owner, { max_players: 2 })
    const late = await rooms.invite(owner, full.room_id, other)
    await rooms.seat(owner, full.room_id, guest)
    expect((await t.client.get(`/rooms/${full.room_id}`, owner.access)).body).toMatchObject({ is_ready: true })
    const refused = await t.client.post(`/rooms/${full.room_id}/join`, { ct: late.ct }, other.access)
    expect(refusal(refused)).toEqual({ status: 409, error: 'conflict', reason: 'room_full' })
    expect(refused.body.message).toContain('full')

    const closing = await rooms.createRoom(owner)
    const pending = await rooms.invite(owner, closing.room_id, other)
    expect((await t.client.post(`/rooms/${closing.room_id}/close`, undefined, owner.access)).body.is_closed).toBe(true)
    expect(refusal(await t.client.post(`/rooms/${closing.room_id}/invite`, { user_name: 'room_guest', player_role: 'x' }, owner.access))).toMatchObject({ status: 409, reason: 'room_closed' })
    // Closing withdrew the pending invitation, so its receiver no longer sees the room.
    expect((await t.client.post(`/rooms/${closing.room_id}/join`, { ct: pending.ct }, other.access)).status).toBe(404)
  })
})

describe(`invitation lists on ${STORE}`, () => {
  test('/invites/my lists what you received and /invites/sent what you sent, newest first, with the ct', async () => {
    const first = await rooms.invite(host, (await rooms.createRoom(host)).room_id, receiver, 'operator')
    const second = await rooms.invite(cohost, (await rooms.createRoom(cohost)).room_id, receiver, 'engineer')
    const received = await t.client.get('/invites/my', receiver.access)
    expect(received.status).toBe(200)
    expect(received.body).toMatchObject({ success: true, total_count: 2 })
    expect(ids(received)).toEqual([second.invite_id, first.invite_id])
    expect(received.body.invitations[1]).toMatchObject({ inviter_id: host.userId, receiver_id: receiver.userId, ct: first.ct, status: 'pending' })

    const sent = await t.client.get('/invites/sent', host.access)
    expect(ids(sent)).toContain(first.invite_id)
    expect(sent.body.invitations.find((invitation: { invite_id: string }) => invitation.invite_id === first.invite_id).ct).toBe(first.ct)
    expect(ids(await t.client.get('/invites/my', stranger.access))).toEqual([])
  })

  test('filters: inviter_id, player_role, is_accepted, status; limit and offset; bad filters are 422', async () => {
    const l = await createTestApp()
    const api = lobby(l.client)
    const [a, b, me] = [await l.client.register('filter_a'), await l.client.register('filter_b'), await l.client.register('filter_me')]
    const fromA = await api.invite(a, (await api.createRoom(a)).room_id, me, 'operator')
    const fromB = await api.invite(b, (await api.createRoom(b)).room_id, me, 'engineer')
    const accepted = await api.seat(a, (await api.createRoom(a)).room_id, me, 'engineer')
    const declinedRoom = await api.createRoom(b)
    const declined = await api.invite(b, declinedRoom.room_id, me, 'observer')
    await l.client.post(`/invites/${declined.invite_id}/decline`, undefined, me.access)

    const query = async (filters: string) => ids(await l.client.get(`/invites/my?${filters}`, me.access))
    expect(await query(`inviter_id=${a.userId}`)).toEqual([accepted.invite_id, fromA.invite_id])
    expect(await query('player_role=engineer')).toEqual([accepted.invite_id, fromB.invite_id])
    expect(await query('is_accepted=true')).toEqual([accepted.invite_id])
    expect(await query('is_accepted=0')).toEqual([declined.invite_id, fromB.invite_id, fromA.invite_id])
    expect(await query('status=pending')).toEqual([fromB.invite_id, fromA.invite_id])
    expect(await query('status=declined')).toEqual([declined.invite_id])
    const page = await l.client.get('/invites/my?limit=2&offset=1', me.access)
    expect(page.body.total_count).toBe(4)
    expect(ids(page)).toEqual([accepted.invite_id, fromB.invite_id])
    for (const bad of ['inviter_id=nope', 'is_accepted=perhaps', 'status=lost', 'limit=0', 'extra=1'])
      expect({ bad, status: (await l.client.get(`/invites/my?${bad}`, me.access)).status }).toEqual({ bad, status: 422 })
  })

  test('the ct is shown only to the receiver and the inviter', () => {
    const invitation = {
      invite_id: 'i',
      room_id: 'r',
      inviter_id: 'inviter',
      receiver_id: 'receiver',
      player_role: 'operator',
      status: 'pending' as const,
      ct: 'secret-ct',
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
      expires_at: '2999-01-01T00:00:00.000Z',
    }
    expect(present(invitation, 'receiver').ct).toBe('secret-ct')
    expect(present(invitation, 'inviter').ct).toBe('secret-ct')
    expect(present(invitation, 'room-owner').ct).toBeNull()
    expect(present({ ...invitation, expires_at: '2000-01-01T00:00:00.000Z' }, 'receiver').status).toBe('expired')
  })
})

describe(`decline and revoke on ${STORE}`, () => {
  test('the receiver declines a pending invitation once; nobody else may', async () => {
    const room = await rooms.createRoom(host)
    const invitation = await rooms.invite(host, room.room_id, receiver)
    for (const notInvitee of [host, admin])
      expect(refusal(await t.client.post(`/invites/${invitation.invite_id}/decline`, undefined, notInvitee.access))).toEqual({ status: 403, error: 'forbidden', reason: 'not_invitee' })
    expect((await t.client.post(`/invites/${invitation.invite_id}/decline`, undefined, stranger.access)).status).toBe(404)
    const declined = await t.client.post(`/invites/${invitation.invite_id}/decline`, undefined, receiver.access)
    expect(declined.status).toBe(200)
    expect(declined.body).toMatchObject({ invite_id: invitation.invite_id, status: 'declined', is_accepted: false, ct: invitation.ct })
    expect(refusal(await t.client.post(`/invites/${invitation.invite_id}/decline`, undefined, receiver.access))).toMatchObject({ status: 409, reason: 'invitation_settled' })
    expect((await t.client.post('/invites/not-a-uuid/decline', undefined, receiver.access)).status).toBe(400)
    expect((await t.client.post('/invites/01936b2e-7c4a-7f3e-9b1d-2f5c8a9e4d10/decline', undefined, receiver.access)).status).toBe(404)
  })

  test('the inviter, the room owner or an admin revokes a pending invitation; the receiver declines instead', async () => {
    const room = await rooms.createRoom(host)
    const byAdmin = await rooms.invite(admin, room.room_id, receiver)
    expect(refusal(await t.client.delete(`/invites/${byAdmin.invite_id}`, receiver.access))).toMatchObject({ status: 403, reason: 'not_room_manager' })
    expect((await t.client.delete(`/invites/${byAdmin.invite_id}`, stranger.access)).status).toBe(404)
    const revoked = await t.client.delete(`/invites/${byAdmin.invite_id}`, host.access)
    expect(revoked.status).toBe(200)
    expect(revoked.body.success).toBe(true)
    expect((await t.client.delete(`/invites/${byAdmin.invite_id}`, host.access)).status).toBe(404)

    const accepted = await rooms.seat(host, room.room_id, receiver)
    expect(refusal(await t.client.delete(`/invites/${accepted.invite_id}`, host.access))).toMatchObject({ status: 409, reason: 'invitation_settled' })
    const byHost = await rooms.invite(host, room.room_id, cohost)
    expect((await t.client.delete(`/invites/${byHost.invite_id}`, admin.access)).status).toBe(200)
  })
})

describe(`invitation retention on ${STORE}`, () => {
  test('the purge deletes invitations settled or expired more than INVITE_RETENTION ago, and nothing still usable', async () => {
    const kept = await createTestApp({ INVITE_RETENTION: '3600' })
    const l = lobby(kept.client)
    const owner = await kept.client.register('retention_owner')
    const guests = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((name) => kept.client.register(`retention_${name}`)))
    const room = await l.createRoom(owner, { max_players: 8 })
    const [pending, declinedLongAgo, acceptedLongAgo, expiredLongAgo, declinedLately] = await Promise.all(
      guests.map((guest) => l.invite(owner, room.room_id, guest)),
    )
    await kept.client.post(`/invites/${declinedLongAgo!.invite_id}/decline`, undefined, guests[1]!.access)
    await kept.client.post(`/rooms/${room.room_id}/join`, { ct: acceptedLongAgo!.ct }, guests[2]!.access)
    await kept.client.post(`/invites/${declinedLately!.invite_id}/decline`, undefined, guests[4]!.access)
    const twoHoursAgo = new Date(Date.now() - 7_200_000).toISOString()
    const age = (id: string, fields: string) => kept.context.db.run(`UPDATE invitations SET ${fields} WHERE invite_id = $2`, [twoHoursAgo, id])
    await age(declinedLongAgo!.invite_id, 'updated_at = $1')
    await age(acceptedLongAgo!.invite_id, 'updated_at = $1')
    await age(expiredLongAgo!.invite_id, 'created_at = $1, updated_at = $1, expires_at = $1')
    // A pending invitation created long ago but still valid stays.
    await age(pending!.invite_id, 'created_at = $1, updated_at = $1')

    expect(await kept.context.invites.purgeSettled(Date.now(), 2)).toBe(3)
    const left = await kept.context.db.all<{ invite_id: string }>('SELECT invite_id FROM invitations ORDER BY invite_id')
    expect(left.map((row) => row.invite_id).sort()).toEqual([pending!.invite_id, declinedLately!.invite_id].sort())
    expect(await kept.context.invites.purgeSettled()).toBe(0)
  })
})
