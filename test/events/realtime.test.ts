import { afterAll, describe, expect, test } from 'bun:test'
import { CLOSE } from '../../src/modules/realtime/protocol'
import { closeTestResources, STORE, startTestServer } from '../support/harness'
import { lobby } from '../support/lobby'
import { connect } from '../support/realtime'

// GET /realtime on one instance: first-frame auth, subscribe with resume, live events, session end.

afterAll(closeTestResources)

describe(`realtime on ${STORE}`, () => {
  test('a member hears others join and leave at once; a reconnect resumes from its last number, each event once', async () => {
    const server = await startTestServer()
    const l = lobby(server.client)
    const owner = await server.client.register('rt_owner')
    const guest = await server.client.register('rt_guest')
    const late = await server.client.register('rt_late')
    const room = await l.createRoom(owner, { max_players: 4 })
    const stream = `room:${room.room_id}`
    const socket = await connect(server.baseUrl)
    await socket.until(() => socket.frames.find((frame) => frame.op === 'hello'))
    socket.send({ op: 'auth', token: owner.access })
    await socket.until(() => socket.frames.find((frame) => frame.op === 'ready'))
    socket.send({ op: 'subscribe', stream, after: 0 })
    await socket.until(() => socket.frames.find((frame) => frame.op === 'subscribed'))
    await l.seat(owner, room.room_id, guest)
    const joined = await socket.until(() => socket.events(stream).find((frame) => frame.event.type === 'member_joined'))
    // After its opening (room_created, 1).
    expect(joined).toMatchObject({ seq: 2, event: { user_id: guest.userId } })
    socket.close()

    // While away: the guest leaves, another joins. On return, exactly those, in order.
    await server.client.delete(`/rooms/${room.room_id}/members/me`, guest.access)
    await l.seat(owner, room.room_id, late)
    // Frames sent back to back, as a hurried client would: they are handled in order.
    const again = await connect(server.baseUrl)
    again.send({ op: 'auth', token: owner.access })
    again.send({ op: 'subscribe', stream, after: 2 })
    await again.until(() => again.frames.find((frame) => frame.op === 'subscribed'))
    expect(again.events(stream).map((frame) => [frame.seq, frame.event.type])).toEqual([
      [3, 'member_left'],
      [4, 'member_joined'],
    ])
    expect(again.frames.find((frame) => frame.op === 'subscribed').last_seq).toBe(4)
    again.close()
  })

  test("a stranger cannot subscribe to a room; a socket without auth is closed; logging out closes the session's sockets", async () => {
    const server = await startTestServer()
    const l = lobby(server.client)
    const owner = await server.client.register('rt_owner2')
    const stranger = await server.client.register('rt_stranger')
    const room = await l.createRoom(owner)
    const socket = await connect(server.baseUrl)
    socket.send({ op: 'auth', token: stranger.access })
    await socket.until(() => socket.frames.find((frame) => frame.op === 'ready'))
    socket.send({ op: 'subscribe', stream: `room:${room.room_id}` })
    expect(await socket.until(() => socket.frames.find((frame) => frame.op === 'error'))).toMatchObject({ error: 'not_found' })
    await server.client.post('/auth/logout', undefined, stranger.access)
    expect((await socket.closed()).code).toBe(CLOSE.sessionEnded)

    const anonymous = await connect(server.baseUrl)
    anonymous.send({ op: 'subscribe', stream: 'user' })
    expect((await anonymous.closed()).code).toBe(CLOSE.unauthorized)
    const forged = await connect(server.baseUrl)
    forged.send({ op: 'auth', token: 'not.a.token' })
    expect((await forged.closed()).code).toBe(CLOSE.unauthorized)
  })

  test('a subscriber far behind catches up past one read of the log: 1,200 missed events, each once, in order', async () => {
    const server = await startTestServer()
    const user = await server.client.register('rt_far_behind')
    const stream = `user:${user.userId}`
    await server.context.db.transaction(async (tx) => {
      for (let i = 0; i < 1200; i++) await server.context.events.emit(tx, [stream, { type: 'account_changed', user_id: user.userId, fields: [`field_${i}`] }])
    })
    const socket = await connect(server.baseUrl)
    socket.send({ op: 'auth', token: user.access })
    socket.send({ op: 'subscribe', stream: 'user', after: 0 })
    const subscribed = await socket.until(() => socket.frames.find((frame) => frame.op === 'subscribed'), 10_000)
    expect(subscribed.last_seq).toBe(1200)
    expect(socket.events(stream).map((frame) => frame.seq)).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1))
    socket.close()
  })
})
