import { type Client, createTestApp, type Session } from './harness'

/** Builds rooms through the API, the way a client would. */
export function lobby(client: Client) {
  const api = {
    async createRoom(owner: Session, body: Record<string, unknown> = {}) {
      const reply = await client.post('/rooms', { room_name: 'Test room', ...body }, owner.access)
      if (reply.status !== 201) throw new Error(`create room: ${reply.status} ${JSON.stringify(reply.body)}`)
      return reply.body as { room_id: string; owner_id: string; max_players: number; players: Array<{ user_id: string; game_role: string }> }
    },
    async invite(by: Session, roomId: string, receiver: Session, player_role = 'operator') {
      const reply = await client.post(`/rooms/${roomId}/invite`, { user_name: receiver.username, player_role }, by.access)
      if (reply.status !== 201) throw new Error(`invite: ${reply.status} ${JSON.stringify(reply.body)}`)
      return reply.body as { invite_id: string; ct: string; receiver_id: string; inviter_id: string; status: string }
    },
    async seat(owner: Session, roomId: string, guest: Session, role = 'operator') {
      const invitation = await api.invite(owner, roomId, guest, role)
      const reply = await client.post(`/rooms/${roomId}/join`, { ct: invitation.ct }, guest.access)
      if (reply.status !== 200) throw new Error(`join: ${reply.status} ${JSON.stringify(reply.body)}`)
      return invitation
    },
    async players(roomId: string, viewer: Session): Promise<string[]> {
      const reply = await client.get(`/rooms/${roomId}`, viewer.access)
      return reply.body.players.map((player: { user_id: string }) => player.user_id)
    },
  }
  return api
}

/**
 * A fresh app with the room tests' cast: the admin, a room owner, two players to seat, and a
 * stranger to every room. For a test file's top level: `const { t, rooms, owner } = await roomWorld()`.
 */
export async function roomWorld() {
  const t = await createTestApp()
  return {
    t,
    rooms: lobby(t.client),
    admin: await t.client.loginAdmin(),
    owner: await t.client.register('room_owner'),
    guest: await t.client.register('room_guest'),
    other: await t.client.register('room_other'),
    stranger: await t.client.register('room_stranger'),
  }
}
