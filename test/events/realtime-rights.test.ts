import { afterAll, describe, expect, test } from 'bun:test'
import { closeTestResources, STORE, startTestServer } from '../support/harness'
import { lobby } from '../support/lobby'
import { follower, subscribe } from '../support/realtime'

// Who hears what over /realtime: every event type reaches exactly the people concerned, live.

afterAll(closeTestResources)

describe(`realtime rights on ${STORE}`, () => {
  test('a room from start to close: members, invitees, the admin and a stranger each hear exactly their part', async () => {
    const server = await startTestServer()
    const { client } = server
    const l = lobby(client)
    const owner = await client.register('rr_owner')
    const guest = await client.register('rr_guest')
    const second = await client.register('rr_second')
    const invitee = await client.register('rr_invitee')
    const stranger = await client.register('rr_stranger')
    const admin = await client.loginAdmin()
    const room = await l.createRoom(owner, { max_players: 3 })
    const roomStream = `room:${room.room_id}`
    const [o, g, s2, i, s, a] = await Promise.all([
      follower(server.baseUrl, owner.access),
      follower(server.baseUrl, guest.access),
      follower(server.baseUrl, second.access),
      follower(server.baseUrl, invitee.access),
      follower(server.baseUrl, stranger.access),
      follower(server.baseUrl, admin.access),
    ])
    await subscribe(o, roomStream)
    await subscribe(a, roomStream)
    expect(await subscribe(s, roomStream)).toMatchObject({ op: 'error', error: 'not_found' })
    expect(await subscribe(g, roomStream)).toMatchObject({ op: 'error', error: 'not_found' })

    // An invitee may follow the room while invited; declining ends that.
    const first = await l.invite(owner, room.room_id, invitee)
    await i.until(() => i.types(i.userStream).includes('invitation_received'))
    expect(await subscribe(i, roomStream)).toMatchObject({ op: 'subscribed' })
    expect((await client.post(`/invites/${first.invite_id}/decline`, undefined, invitee.access)).status).toBe(200)
    await i.until(() => i.frames.find((frame) => frame.op === 'unsubscribed' && frame.reason === 'access_lost'))
    // Invited again and revoked: the same.
    const again = await l.invite(owner, room.room_id, invitee)
    expect(await subscribe(i, roomStream)).toMatchObject({ op: 'subscribed' })
    expect((await client.delete(`/invites/${again.invite_id}`, owner.access)).status).toBe(200)
    await i.until(() => i.frames.filter((frame) => frame.op === 'unsubscribed' && frame.reason === 'access_lost').length === 2)

    // The guest joins (the room fills: ready), is kicked, and hears nothing of the room after.
    await l.seat(owner, room.room_id, guest)
    await subscribe(g, roomStream)
    await l.seat(owner, room.room_id, second)
    await subscribe(s2, roomStream)
    await o.until(() => o.types(roomStream).includes('room_ready'))
    expect((await client.delete(`/rooms/${room.room_id}/members/${guest.userId}`, owner.access)).status).toBe(200)
    await g.until(() => g.frames.find((frame) => frame.op === 'unsubscribed' && frame.stream === roomStream))
    // The owner leaves: the second player owns it; then they leave too and the room closes.
    expect((await client.delete(`/rooms/${room.room_id}/members/me`, owner.access)).status).toBe(200)
    expect((await client.delete(`/rooms/${room.room_id}/members/me`, second.access)).status).toBe(200)
    await a.until(() => a.types(roomStream).includes('room_closed'))

    const everything = [
      'member_joined',
      'member_joined',
      'room_ready',
      'member_kicked',
      'room_not_ready',
      'member_left',
      'owner_changed',
      'member_left',
      'room_closed',
    ]
    expect(a.types(roomStream)).toEqual(everything)
    // Each hears the room while in it, from their subscription on: the owner until they leave, the guest until kicked.
    expect(o.types(roomStream)).toEqual(everything.slice(0, 6))
    expect(g.types(roomStream)).toEqual(['member_joined', 'room_ready', 'member_kicked'])
    expect(s2.types(roomStream)).toEqual(['member_kicked', 'room_not_ready', 'member_left', 'owner_changed', 'member_left'])
    expect(i.types(roomStream)).toEqual([])
    expect(s.events(roomStream)).toEqual([])

    // Each one's own stream: what concerns them, no more.
    expect(o.types(o.userStream)).toEqual(['invitation_declined', 'invitation_accepted', 'invitation_accepted'])
    expect(g.types(g.userStream)).toEqual(['invitation_received', 'invitation_accepted', 'removed_from_room'])
    expect(s2.types(s2.userStream)).toEqual(['invitation_received', 'invitation_accepted'])
    expect(i.types(i.userStream)).toEqual(['invitation_received', 'invitation_declined', 'invitation_received', 'invitation_revoked'])
    expect(s.types(s.userStream)).toEqual([])
    expect(a.types(a.userStream)).toEqual([])
    // No frame anyone got names a stream that is not theirs.
    for (const socket of [o, g, s2, i, s, a])
      expect(socket.frames.filter((frame) => frame.op === 'event').every((frame) => frame.stream === roomStream || frame.stream === socket.userStream)).toBe(
        true,
      )
  })

  test('sessions and accounts: logout, password change, deactivation and deletion close exactly the sockets of the sessions ended', async () => {
    const server = await startTestServer()
    const { client } = server
    const admin = await client.loginAdmin()
    const alice = await client.register('rr_alice')
    const aliceElsewhere = await client.login('rr_alice', 'password-123')
    const bob = await client.register('rr_bob')
    const carol = await client.register('rr_carol')
    const [aliceHere, aliceThere, bobSocket, carolSocket, adminSocket] = await Promise.all([
      follower(server.baseUrl, alice.access),
      follower(server.baseUrl, aliceElsewhere.access),
      follower(server.baseUrl, bob.access),
      follower(server.baseUrl, carol.access),
      follower(server.baseUrl, admin.access),
    ])
    // A password change ends the other sessions: the socket of the one used stays.
    expect((await client.post('/auth/change-password', { current_password: 'password-123', new_password: 'password-456' }, alice.access)).status).toBe(200)
    expect(await aliceThere.closed()).toMatchObject({ code: 4003 })
    await aliceHere.until(() => aliceHere.types(aliceHere.userStream).includes('session_revoked'))
    expect(aliceHere.frames.some((frame) => frame.op === 'closed')).toBe(false)
    // Logout ends that session's socket.
    await client.post('/auth/logout', undefined, alice.access)
    expect(await aliceHere.closed()).toMatchObject({ code: 4003 })
    // Deactivation and deletion end every session of the account.
    expect((await client.post(`/users/${bob.userId}/deactivate`, undefined, admin.access)).status).toBe(200)
    expect(await bobSocket.closed()).toMatchObject({ code: 4003 })
    expect((await client.delete(`/users/${carol.userId}`, admin.access)).status).toBe(200)
    expect(await carolSocket.closed()).toMatchObject({ code: 4003 })
    // Nobody else's socket was touched.
    await Bun.sleep(100)
    expect(adminSocket.frames.filter((frame) => frame.op === 'event')).toEqual([])
    expect(adminSocket.frames.at(-1)).toMatchObject({ op: 'subscribed' })
  })

  test('an admin demoted loses the rooms they followed only as an admin, at once, and keeps their own stream', async () => {
    const server = await startTestServer()
    const { client } = server
    const l = lobby(client)
    const root = await client.loginAdmin()
    const owner = await client.register('rr_room_owner')
    const helper = await client.register('rr_helper')
    expect((await client.put(`/users/${helper.userId}`, { user_role: 'admin' }, root.access)).status).toBe(200)
    const promoted = await client.login('rr_helper', 'password-123')
    const room = await l.createRoom(owner)
    const socket = await follower(server.baseUrl, promoted.access)
    expect(await subscribe(socket, `room:${room.room_id}`)).toMatchObject({ op: 'subscribed' })
    expect((await client.put(`/users/${helper.userId}`, { user_role: 'user' }, root.access)).status).toBe(200)
    expect(await socket.until(() => socket.frames.find((frame) => frame.op === 'unsubscribed'))).toEqual({
      op: 'unsubscribed',
      stream: `room:${room.room_id}`,
      reason: 'access_lost',
    })
    expect(socket.types(socket.userStream)).toContain('account_changed')
    const stranger = await client.register('rr_after_demotion')
    await l.seat(owner, room.room_id, stranger)
    await Bun.sleep(100)
    expect(socket.events(`room:${room.room_id}`)).toEqual([])
  })
})

describe(`realtime rights under races on ${STORE}`, () => {
  test('a member kicked while their subscription is being checked: an error, or subscribed, the kick and unsubscribed; never more of the room (SECURITY 32)', async () => {
    const server = await startTestServer()
    const { client } = server
    const l = lobby(client)
    const owner = await client.register('race_owner')
    const player = await client.register('race_player')
    const room = await l.createRoom(owner)
    await l.seat(owner, room.room_id, player)
    const socket = await follower(server.baseUrl, player.access)
    // The check of the right to the room waits until the kick has been committed.
    const rooms = server.context.rooms
    const check = rooms.streamAccess.bind(rooms)
    let kicked: () => void = () => {}
    const kickDone = new Promise<void>((resolve) => (kicked = resolve))
    rooms.streamAccess = async (...args) => {
      const answer = await check(...args)
      await kickDone
      return answer
    }
    socket.send({ op: 'subscribe', stream: `room:${room.room_id}`, after: 0 })
    await Bun.sleep(50)
    expect((await client.delete(`/rooms/${room.room_id}/members/${player.userId}`, owner.access)).status).toBe(200)
    kicked()
    rooms.streamAccess = check
    // The kick reaches this instance while the right is read (an error), or, on PostgreSQL, a notice later, once it was granted.
    const stream = `room:${room.room_id}`
    await socket.until(() => socket.frames.find((frame) => frame.stream === stream && (frame.op === 'error' || frame.op === 'unsubscribed')))
    await l.seat(owner, room.room_id, await client.register('race_later'))
    await Bun.sleep(100)
    const shape = socket.frames.filter((frame) => frame.stream === stream).map((frame) => (frame.op === 'event' ? frame.event.type : frame.op))
    // The kick comes in the replay, or, when the replay stopped short of events still being committed, live just after it.
    if (shape[0] === 'error') expect(shape).toEqual(['error'])
    else expect(shape).toBeOneOf([
      ['room_created', 'member_joined', 'member_kicked', 'subscribed', 'unsubscribed'],
      ['room_created', 'member_joined', 'subscribed', 'member_kicked', 'unsubscribed'],
    ])
  })

  test("an invitee's view ends when the invitation runs out, but not once they have joined", async () => {
    const server = await startTestServer()
    const { client } = server
    const l = lobby(client)
    const owner = await client.register('expiry_owner')
    const joiner = await client.register('expiry_joiner')
    const waiter = await client.register('expiry_waiter')
    const room = await l.createRoom(owner, { max_players: 6 })
    const stream = `room:${room.room_id}`
    const joining = await l.invite(owner, room.room_id, joiner)
    await l.invite(owner, room.room_id, waiter)
    // Both invitations run out in a second.
    const soon = new Date(Date.now() + 1000).toISOString()
    await server.context.db.run('UPDATE invitations SET expires_at = $1 WHERE room_id = $2', [soon, room.room_id])
    const [joinerSocket, waiterSocket] = [await follower(server.baseUrl, joiner.access), await follower(server.baseUrl, waiter.access)]
    expect(await subscribe(joinerSocket, stream)).toMatchObject({ op: 'subscribed' })
    expect(await subscribe(waiterSocket, stream)).toMatchObject({ op: 'subscribed' })
    expect((await client.post(`/rooms/${room.room_id}/join`, { ct: joining.ct }, joiner.access)).status).toBe(200)
    await Bun.sleep(1200)
    await l.seat(owner, room.room_id, await client.register('expiry_later'))
    await joinerSocket.until(() => joinerSocket.types(stream).length === 2)
    expect(joinerSocket.types(stream)).toEqual(['member_joined', 'member_joined'])
    await waiterSocket.until(() => waiterSocket.frames.find((frame) => frame.op === 'unsubscribed'))
    expect(waiterSocket.types(stream)).toEqual(['member_joined'])
  })

  test('demoted and promoted again in the same instant, an admin subscribes to a room they see only as an admin: subscribed, every time (SECURITY 32)', async () => {
    const server = await startTestServer({ REALTIME_MESSAGE_RATE: '1000' })
    const { client } = server
    const root = await client.loginAdmin()
    const owner = await client.register('flip_owner')
    const flipper = await client.register('flip_admin')
    const room = await lobby(client).createRoom(owner)
    const stream = `room:${room.room_id}`
    expect((await client.put(`/users/${flipper.userId}`, { user_role: 'admin' }, root.access)).status).toBe(200)
    const session = await client.login('flip_admin', 'password-123')
    const socket = await follower(server.baseUrl, session.access)
    const heard = () => socket.events(socket.userStream).at(-1)?.seq ?? 0
    const logged = async () => Number((await server.context.db.get<{ n: number }>('SELECT MAX(seq) AS n FROM events WHERE stream = $1', [socket.userStream]))!.n)
    for (let cycle = 0; cycle < 30; cycle++) {
      await Promise.all([
        client.put(`/users/${flipper.userId}`, { user_role: 'user' }, root.access),
        Bun.sleep(0).then(() => client.put(`/users/${flipper.userId}`, { user_role: 'admin' }, root.access)),
      ])
      const role = (await client.get(`/users/${flipper.userId}`, root.access)).body.user_role
      if (role !== 'admin') expect((await client.put(`/users/${flipper.userId}`, { user_role: 'admin' }, root.access)).status).toBe(200)
      // Once the client has heard the changes, as a client would before acting on them.
      const written = await logged()
      await socket.until(() => heard() >= written)
      expect({ cycle, answer: await subscribe(socket, stream) }).toMatchObject({ cycle, answer: { op: 'subscribed', stream } })
      socket.send({ op: 'unsubscribe', stream })
      await socket.until(() => socket.frames.at(-1)?.op === 'unsubscribed')
    }
  }, 60_000)

  test('a member kicked while their subscription catches up gets subscribed, the kick, then unsubscribed; nothing after it (SECURITY 32)', async () => {
    const server = await startTestServer()
    const { client } = server
    const l = lobby(client)
    const owner = await client.register('catchup_owner')
    const player = await client.register('catchup_player')
    const room = await l.createRoom(owner)
    const stream = `room:${room.room_id}`
    await l.seat(owner, room.room_id, player)
    const socket = await follower(server.baseUrl, player.access)
    // The right is granted; the kick is committed, and another player seated, before the replay starts.
    const events = server.context.events
    const epoch = events.epoch.bind(events)
    let kicked: () => void = () => {}
    const kickDone = new Promise<void>((resolve) => (kicked = resolve))
    events.epoch = async () => {
      await kickDone
      return epoch()
    }
    socket.send({ op: 'subscribe', stream, after: 0 })
    await Bun.sleep(50)
    expect((await client.delete(`/rooms/${room.room_id}/members/${player.userId}`, owner.access)).status).toBe(200)
    await l.seat(owner, room.room_id, await client.register('catchup_later'))
    kicked()
    events.epoch = epoch
    await socket.until(() => socket.frames.find((frame) => frame.op === 'unsubscribed' && frame.stream === stream))
    await Bun.sleep(100)
    const shape = socket.frames.filter((frame) => frame.stream === stream).map((frame) => (frame.op === 'event' ? frame.event.type : frame.op))
    expect(shape.slice(-3)).toEqual(['member_kicked', 'subscribed', 'unsubscribed'])
    expect(shape).not.toContain('room_ready')
    expect(socket.frames.filter((frame) => frame.stream === stream && frame.op === 'event' && frame.event.type === 'member_joined')).toHaveLength(1)
  })
})

