import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, expectEnvelope, type Session, STORE, type TestApp } from '../support/harness'
import { lobby } from '../support/lobby'

afterAll(closeTestResources)

const ACTORS = ['anonymous', 'stranger', 'invitee', 'member', 'owner', 'admin'] as const
type Actor = (typeof ACTORS)[number]

/** A fresh room per call: owned by `owner`, with `member` and `member2` seated and `invitee` invited. */
interface Scene {
  roomId: string
  inviteId: string
  ct: string
}

let t: TestApp
let api: ReturnType<typeof lobby>
const sessions = {} as Record<Exclude<Actor, 'anonymous'> | 'member2', Session>

beforeAll(async () => {
  t = await createTestApp()
  api = lobby(t.client)
  sessions.admin = await t.client.loginAdmin()
  for (const name of ['stranger', 'invitee', 'member', 'member2', 'owner'] as const) sessions[name] = await t.client.register(`matrix_${name}`)
})

async function scene(): Promise<Scene> {
  const room = await api.createRoom(sessions.owner, { max_players: 6 })
  await api.seat(sessions.owner, room.room_id, sessions.member)
  await api.seat(sessions.owner, room.room_id, sessions.member2)
  const invitation = await api.invite(sessions.owner, room.room_id, sessions.invitee)
  return { roomId: room.room_id, inviteId: invitation.invite_id, ct: invitation.ct }
}

const row = (anonymous: number, stranger: number, invitee: number, member: number, owner: number, admin: number) => ({ anonymous, stranger, invitee, member, owner, admin })

const CASES: Array<{ route: string; expected: Record<Actor, number>; request: (s: Scene) => [string, string, unknown?] }> = [
  { route: 'GET /rooms', expected: row(401, 403, 403, 403, 403, 200), request: () => ['GET', '/rooms'] },
  { route: 'POST /rooms', expected: row(401, 201, 201, 201, 201, 201), request: () => ['POST', '/rooms', { room_name: 'new' }] },
  { route: 'GET /rooms/my', expected: row(401, 200, 200, 200, 200, 200), request: () => ['GET', '/rooms/my'] },
  { route: 'POST /rooms/my', expected: row(401, 200, 200, 200, 200, 200), request: () => ['POST', '/rooms/my'] },
  { route: 'GET /rooms/{id}', expected: row(401, 404, 200, 200, 200, 200), request: (s) => ['GET', `/rooms/${s.roomId}`] },
  { route: 'POST /rooms/{id}', expected: row(401, 404, 200, 200, 200, 200), request: (s) => ['POST', `/rooms/${s.roomId}`] },
  {
    route: 'POST /rooms/{id}/invite',
    expected: row(401, 404, 403, 403, 201, 201),
    request: (s) => ['POST', `/rooms/${s.roomId}/invite`, { user_name: 'root_admin', player_role: 'observer' }],
  },
  // Everyone presents the invitee's ct: only the invitee may use it.
  { route: 'POST /rooms/{id}/join', expected: row(401, 404, 200, 403, 403, 403), request: (s) => ['POST', `/rooms/${s.roomId}/join`, { ct: s.ct }] },
  {
    route: 'DELETE /rooms/{id}/members/{user_id}',
    expected: row(401, 404, 403, 403, 200, 200),
    request: (s) => ['DELETE', `/rooms/${s.roomId}/members/${sessions.member2.userId}`],
  },
  { route: 'DELETE /rooms/{id}/members/me', expected: row(401, 404, 404, 200, 200, 404), request: (s) => ['DELETE', `/rooms/${s.roomId}/members/me`] },
  { route: 'POST /rooms/{id}/close', expected: row(401, 404, 403, 403, 200, 200), request: (s) => ['POST', `/rooms/${s.roomId}/close`] },
  { route: 'GET /invites/my', expected: row(401, 200, 200, 200, 200, 200), request: () => ['GET', '/invites/my'] },
  { route: 'GET /invites/sent', expected: row(401, 200, 200, 200, 200, 200), request: () => ['GET', '/invites/sent'] },
  // The invitee's invitation: the owner sent it.
  { route: 'POST /invites/{id}/decline', expected: row(401, 404, 200, 404, 403, 403), request: (s) => ['POST', `/invites/${s.inviteId}/decline`] },
  { route: 'DELETE /invites/{id}', expected: row(401, 404, 403, 404, 200, 200), request: (s) => ['DELETE', `/invites/${s.inviteId}`] },
]

describe(`rooms access matrix on ${STORE} (SECURITY 14): every route x anonymous, stranger, invitee, member, owner, admin`, () => {
  for (const { route, expected, request } of CASES) {
    test(route, async () => {
      for (const actor of ACTORS) {
        const [method, path, body] = request(await scene())
        const token = actor === 'anonymous' ? undefined : sessions[actor].access
        const reply = await t.client.call(method, path, { token, body })
        expect({ actor, status: reply.status }).toEqual({ actor, status: expected[actor] })
        if (reply.status >= 400) expectEnvelope(reply)
      }
    })
  }

  test('a room you may not see stays hidden whatever you try on it', async () => {
    const s = await scene()
    const others = await api.createRoom(sessions.stranger)
    for (const [method, path, body] of [
      ['GET', `/rooms/${s.roomId}`],
      ['POST', `/rooms/${s.roomId}/invite`, { user_name: 'matrix_stranger', player_role: 'spy' }],
      ['POST', `/rooms/${s.roomId}/join`, { ct: s.ct }],
      ['DELETE', `/rooms/${s.roomId}/members/${sessions.member.userId}`],
      ['POST', `/rooms/${s.roomId}/close`],
    ] as const) {
      expect((await t.client.call(method, path, { token: sessions.stranger.access, body })).status).toBe(404)
    }
    expect((await t.client.get(`/rooms/${others.room_id}`, sessions.owner.access)).status).toBe(404)
    expect((await t.client.get(`/rooms/${s.roomId}`, sessions.owner.access)).body.players).toHaveLength(3)
  })
})
