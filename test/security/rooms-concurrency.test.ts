import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { closeTestResources, type Session, STORE, startTestServer } from '../support/harness'
import { lobby } from '../support/lobby'

afterAll(closeTestResources)

type Server = Awaited<ReturnType<typeof startTestServer>>
let server: Server
let rooms: ReturnType<typeof lobby>
let owner: Session
let crowd: Session[]
beforeAll(async () => {
  server = await startTestServer()
  rooms = lobby(server.client)
  owner = await server.client.register('race_owner')
  crowd = await Promise.all(Array.from({ length: 10 }, (_, i) => server.client.register(`racer_${i}`)))
})

const count = (statuses: number[], status: number) => statuses.filter((candidate) => candidate === status).length

describe(`concurrency on ${STORE}, by parallel HTTP requests (SECURITY 18)`, () => {
  test('ten invitees racing for two free seats: exactly two get in, the room never overflows', async () => {
    const room = await rooms.createRoom(owner, { max_players: 3 })
    const invitations = await Promise.all(crowd.map((guest) => rooms.invite(owner, room.room_id, guest)))
    const replies = await Promise.all(
      crowd.map((guest, i) => server.client.post(`/rooms/${room.room_id}/join`, { ct: invitations[i]!.ct }, guest.access)),
    )
    const statuses = replies.map((reply) => reply.status)
    expect(count(statuses, 200)).toBe(2)
    expect(count(statuses, 409)).toBe(8)
    const final = (await server.client.get(`/rooms/${room.room_id}`, owner.access)).body
    expect(final.players).toHaveLength(3)
    expect(final.is_ready).toBe(true)
  })

  test('one ct redeemed twenty times at once: exactly one success', async () => {
    const room = await rooms.createRoom(owner, { max_players: 8 })
    const guest = crowd[0]!
    const invitation = await rooms.invite(owner, room.room_id, guest)
    const replies = await Promise.all(Array.from({ length: 20 }, () => server.client.post(`/rooms/${room.room_id}/join`, { ct: invitation.ct }, guest.access)))
    const statuses = replies.map((reply) => reply.status)
    expect(count(statuses, 200)).toBe(1)
    expect(count(statuses, 409)).toBe(19)
    expect(await rooms.players(room.room_id, owner)).toEqual([owner.userId, guest.userId])
  })

  test('ten simultaneous invitations of one user to one room: exactly one is made', async () => {
    const room = await rooms.createRoom(owner)
    const target = crowd[1]!
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => server.client.post(`/rooms/${room.room_id}/invite`, { user_name: target.username, player_role: 'x' }, owner.access)),
    )
    expect(count(replies.map((reply) => reply.status), 201)).toBe(1)
    expect((await server.client.get('/invites/my?status=pending', target.access)).body.invitations.filter((i: { room_id: string }) => i.room_id === room.room_id)).toHaveLength(1)
  })

  test('everybody leaving at once: the room ends closed and empty, with no error on the way', async () => {
    const room = await rooms.createRoom(owner, { max_players: 6 })
    const guests = crowd.slice(2, 7)
    for (const guest of guests) await rooms.seat(owner, room.room_id, guest)
    const replies = await Promise.all([owner, ...guests].map((player) => server.client.delete(`/rooms/${room.room_id}/members/me`, player.access)))
    expect(replies.map((reply) => reply.status)).toEqual(Array(6).fill(200))
    const admin = await server.client.loginAdmin()
    expect((await server.client.get(`/rooms/${room.room_id}`, admin.access)).body).toMatchObject({ is_closed: true, players: [] })
  })
})
