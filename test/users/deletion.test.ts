import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, refusal, type Session, STORE, type TestApp } from '../support/harness'
import { lobby } from '../support/lobby'

afterAll(closeTestResources)

let t: TestApp
let admin: Session
beforeAll(async () => {
  t = await createTestApp()
  admin = await t.client.loginAdmin()
})

const accountEvents = async (app: TestApp, userId: string) =>
  (await app.context.db.all<{ type: string; payload: string }>("SELECT type, payload FROM events WHERE stream = 'accounts' ORDER BY seq"))
    .filter((row) => JSON.parse(row.payload).user_id === userId)
    .map((row) => row.type)

describe(`deleting and restoring accounts on ${STORE}`, () => {
  test('a deleted account cannot log in (403 account_deleted), keeps its name and address reserved, hides from lists, and is restored whole', async () => {
    const user = await t.client.register('soft_deleted')
    await t.client.put('/users/me', { email: 'soft.deleted@example.com', display_name: 'Soft' }, user.access)
    const deleted = await t.client.delete(`/users/${user.userId}`, admin.access)
    expect([deleted.status, deleted.body.success]).toEqual([200, true])

    // Its sessions ended at once.
    expect((await t.client.get('/auth/me', user.access)).status).toBe(401)
    expect((await t.client.post('/auth/refresh', { refresh_token: user.refresh })).status).toBe(401)
    expect(refusal(await t.client.post('/auth/login', { username: 'soft_deleted', password: 'password-123' }))).toEqual({ status: 403, error: 'account_deleted' })
    expect((await t.client.post('/auth/login', { username: 'soft_deleted', password: 'wrong-password' })).status).toBe(401)
    // The admin still sees it, as deleted; lists show it only when asked.
    expect((await t.client.get(`/users/${user.userId}`, admin.access)).body).toMatchObject({ status: 'deleted', is_active: false, deleted_at: expect.any(String), display_name: 'Soft' })
    const listed = async (query: string) => (await t.client.get(`/users?limit=200&search=soft_deleted${query}`, admin.access)).body.users.length
    expect([await listed(''), await listed('&is_active=false'), await listed('&status=inactive'), await listed('&status=deleted')]).toEqual([0, 0, 0, 1])
    // Name and address stay its own.
    expect(refusal(await t.client.post('/auth/registrate', { username: 'SOFT_DELETED', password: 'password-123' }))).toMatchObject({ status: 409, reason: 'username_taken' })
    const other = await t.client.register('soft_other')
    expect(refusal(await t.client.put('/users/me', { email: 'Soft.Deleted@example.com' }, other.access))).toMatchObject({ status: 409, reason: 'email_taken' })
    // Nothing else is done to a deleted account; deleting again changes nothing.
    expect(refusal(await t.client.post(`/users/${user.userId}/activate`, undefined, admin.access))).toMatchObject({ status: 409, reason: 'user_deleted' })
    expect(refusal(await t.client.put(`/users/${user.userId}`, { username: 'renamed_ghost' }, admin.access))).toMatchObject({ status: 409, reason: 'user_deleted' })
    expect((await t.client.delete(`/users/${user.userId}`, admin.access)).status).toBe(200)
    // Nobody can invite it or write to it.
    expect((await t.client.post(`/dms/${user.userId}/messages`, { body: 'still there?' }, other.access)).status).toBe(404)

    expect(refusal(await t.client.post(`/users/${user.userId}/restore`, undefined, other.access))).toMatchObject({ status: 403, reason: 'admin_only' })
    const restored = await t.client.post(`/users/${user.userId}/restore`, undefined, admin.access)
    expect(restored.body).toMatchObject({ status: 'active', is_active: true, deleted_at: null, email: 'soft.deleted@example.com', display_name: 'Soft' })
    expect(refusal(await t.client.post(`/users/${user.userId}/restore`, undefined, admin.access))).toMatchObject({ status: 409, reason: 'not_deleted' })
    // Not its sessions: it logs in again.
    expect((await t.client.get('/auth/me', user.access)).status).toBe(401)
    expect((await t.client.login('soft_deleted', 'password-123')).userId).toBe(user.userId)
    expect(await accountEvents(t, user.userId)).toEqual(['account_created', 'account_changed', 'account_deleted', 'account_restored'])
  })

  test('a deleted player leaves their open rooms (ownership passes on) and their pending invitations are withdrawn; restored, their closed rooms are still theirs', async () => {
    const rooms = lobby(t.client)
    const owner = await t.client.register('leaving_owner')
    const player = await t.client.register('staying_player')
    const invitee = await t.client.register('pending_invitee')
    const room = await rooms.createRoom(owner, { max_players: 4 })
    await rooms.seat(owner, room.room_id, player)
    const sent = await rooms.invite(owner, room.room_id, invitee)
    const elsewhere = await rooms.createRoom(player)
    const received = await rooms.invite(player, elsewhere.room_id, owner)
    const closed = await rooms.createRoom(owner)
    await t.client.post(`/rooms/${closed.room_id}/close`, undefined, owner.access)

    expect((await t.client.delete(`/users/${owner.userId}`, admin.access)).status).toBe(200)
    const after = (await t.client.get(`/rooms/${room.room_id}`, player.access)).body
    expect([after.owner_id, after.players.map((p: { user_id: string }) => p.user_id)]).toEqual([player.userId, [player.userId]])
    expect((await t.client.get('/invites/my?status=pending', invitee.access)).body.total_count).toBe(0)
    expect((await t.client.get('/invites/sent?status=pending', player.access)).body.total_count).toBe(0)
    for (const id of [sent.invite_id, received.invite_id])
      expect((await t.context.db.all('SELECT invite_id FROM invitations WHERE invite_id = $1', [id])).length).toBe(0)

    await t.client.post(`/users/${owner.userId}/restore`, undefined, admin.access)
    const back = await t.client.login('leaving_owner', 'password-123')
    const mine = (await t.client.get('/rooms/my', back.access)).body.rooms.map((r: { room_id: string }) => r.room_id)
    expect(mine).toEqual([closed.room_id])
  })

  test('permanent=true erases: the name is free again, room messages stay by a deleted user, conversations go', async () => {
    const rooms = lobby(t.client)
    const owner = await t.client.register('erase_owner')
    const user = await t.client.register('erased_for_good')
    await t.client.put('/users/me', { email: 'erased@example.com' }, user.access)
    const room = await rooms.createRoom(owner)
    await rooms.seat(owner, room.room_id, user)
    const said = (await t.client.post(`/rooms/${room.room_id}/messages`, { body: 'remember me' }, user.access)).body
    await t.client.post(`/dms/${owner.userId}/messages`, { body: 'private words' }, user.access)

    expect((await t.client.delete(`/users/${user.userId}?permanent=true`, admin.access)).body).toMatchObject({ success: true, message: 'User erased' })
    expect((await t.client.get(`/users/${user.userId}`, admin.access)).status).toBe(404)
    expect((await t.client.delete(`/users/${user.userId}?permanent=true`, admin.access)).status).toBe(404)
    const message = (await t.client.get(`/rooms/${room.room_id}/messages`, owner.access)).body.messages.find((m: { message_id: string }) => m.message_id === said.message_id)
    expect(message).toMatchObject({ body: 'remember me', author_id: null })
    expect((await t.client.get('/dms', owner.access)).body.total_count).toBe(0)
    expect(await accountEvents(t, user.userId)).toEqual(['account_created', 'account_changed', 'account_deleted', 'account_erased'])
    const again = await t.client.post('/auth/registrate', { username: 'erased_for_good', password: 'password-123', email: 'erased@example.com' })
    expect(again.status).toBe(201)
    expect(again.body.user.user_id).not.toBe(user.userId)
  })

  test('once its erasure has begun, an account cannot be restored half-erased (409 erasure_under_way), and the erasure finishes', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    const user = await f.client.register('half_erased')
    const peer = await f.client.register('half_erased_peer')
    await f.client.post(`/dms/${peer.userId}/messages`, { body: 'soon gone' }, user.access)
    let attempt: Awaited<ReturnType<typeof f.client.post>> | undefined
    // Between the steps of the erasure, as a second admin would at the wrong moment.
    f.context.users.onErase(async () => {
      attempt ??= await f.client.post(`/users/${user.userId}/restore`, undefined, root.access)
    })
    expect((await f.client.delete(`/users/${user.userId}?permanent=true`, root.access)).status).toBe(200)
    expect(refusal(attempt!)).toEqual({ status: 409, error: 'conflict', reason: 'erasure_under_way' })
    expect((await f.client.get(`/users/${user.userId}`, root.access)).status).toBe(404)
  })

  test('an account restored before its erasure begins stays whole, and the erasure answers 409', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    const user = await f.client.register('restored_first')
    const peer = await f.client.register('restored_first_peer')
    await f.client.post(`/dms/${peer.userId}/messages`, { body: 'still here' }, user.access)
    let once = true
    // After the deletion's steps, before the erasure's: a restore then wins.
    f.context.users.onDeleted(async () => {
      if (!once) return
      once = false
      expect((await f.client.post(`/users/${user.userId}/restore`, undefined, root.access)).status).toBe(200)
    })
    expect(refusal(await f.client.delete(`/users/${user.userId}?permanent=true`, root.access))).toEqual({ status: 409, error: 'conflict', reason: 'reactivated_during_deletion' })
    expect((await f.client.get(`/users/${user.userId}`, root.access)).body.status).toBe('active')
    expect((await f.client.get('/dms', peer.access)).body.total_count).toBe(1)
  })

  test('a user deletes their own account with their password; a wrong one is 401 and counted; an admin cannot', async () => {
    const user = await t.client.register('self_deleting')
    const other = await t.client.login('self_deleting', 'password-123')
    expect(refusal(await t.client.call('DELETE', '/users/me', { token: user.access, body: { password: 'not-my-password' } }))).toEqual({ status: 401, error: 'invalid_credentials' })
    expect((await t.client.call('DELETE', '/users/me', { token: user.access, body: {} })).status).toBe(422)
    expect((await t.client.call('DELETE', '/users/me', { token: user.access })).status).toBe(422)
    expect((await t.client.get('/auth/me', user.access)).status).toBe(200)
    const deleted = await t.client.call('DELETE', '/users/me', { token: user.access, body: { password: 'password-123' } })
    expect([deleted.status, deleted.body.success]).toEqual([200, true])
    for (const session of [user, other]) expect((await t.client.get('/auth/me', session.access)).status).toBe(401)
    expect(refusal(await t.client.post('/auth/login', { username: 'self_deleting', password: 'password-123' }))).toEqual({ status: 403, error: 'account_deleted' })
    expect((await t.client.get(`/users/${user.userId}`, admin.access)).body.status).toBe('deleted')
    expect(refusal(await t.client.call('DELETE', '/users/me', { token: admin.access, body: { password: 'root-admin-password' } }))).toMatchObject({ status: 409, reason: 'self_target' })
  })

  test('wrong passwords on DELETE /users/me lock out like a change of password: a burst of forty gets LOGIN_MAX_FAILURES tries', async () => {
    const f = await createTestApp({ LOGIN_MAX_FAILURES: '5' })
    const user = await f.client.register('guessed_at')
    const replies = await Promise.all(
      Array.from({ length: 40 }, () => f.client.call('DELETE', '/users/me', { token: user.access, body: { password: 'a-wrong-guess' } })),
    )
    expect(replies.filter((reply) => reply.status === 401)).toHaveLength(5)
    expect(replies.filter((reply) => reply.status === 429)).toHaveLength(35)
    // Locked: even the right password waits.
    expect((await f.client.call('DELETE', '/users/me', { token: user.access, body: { password: 'password-123' } })).status).toBe(429)
    expect((await f.client.get('/auth/me', user.access)).status).toBe(200)
  })

  test('GET /users/me/export: the account, its seats, its room messages and its conversations, both sides; nobody else\'s data', async () => {
    const rooms = lobby(t.client)
    const me = await t.client.register('exporting_me')
    const peer = await t.client.register('export_peer')
    const stranger = await t.client.register('export_stranger')
    await t.client.put('/users/me', { display_name: 'Exporter', email: 'exporter@example.com' }, me.access)
    const mine = await rooms.createRoom(me, { room_name: 'My control room' })
    const theirs = await rooms.createRoom(peer, { room_name: 'Their turbine hall' })
    await rooms.seat(peer, theirs.room_id, me, 'engineer')
    await t.client.post(`/rooms/${mine.room_id}/close`, undefined, me.access)
    const said = (await t.client.post(`/rooms/${theirs.room_id}/messages`, { body: 'pressure is fine' }, me.access)).body
    const gone = (await t.client.post(`/rooms/${theirs.room_id}/messages`, { body: 'typo' }, me.access)).body
    await t.client.delete(`/rooms/${theirs.room_id}/messages/${gone.message_id}`, me.access)
    await t.client.post(`/rooms/${theirs.room_id}/messages`, { body: 'not mine to export' }, peer.access)
    await t.client.post(`/dms/${peer.userId}/messages`, { body: 'hello peer' }, me.access)
    await t.client.post(`/dms/${me.userId}/messages`, { body: 'hello back' }, peer.access)
    await t.client.post(`/dms/${stranger.userId}/messages`, { body: 'a private word' }, peer.access)

    const reply = await t.client.get('/users/me/export', me.access)
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-disposition')).toContain('attachment')
    const data = reply.body
    expect(data.account).toMatchObject({ user_id: me.userId, display_name: 'Exporter', email: 'exporter@example.com' })
    expect(data.rooms.map((seat: { room_name: string; is_closed: boolean; is_owner: boolean; game_role: string }) => [seat.room_name, seat.is_closed, seat.is_owner, seat.game_role]).sort()).toEqual([
      ['My control room', true, true, 'host'],
      ['Their turbine hall', false, false, 'engineer'],
    ])
    expect(data.room_messages.map((message: { message_id: string; body: string }) => [message.message_id, message.body])).toEqual([[said.message_id, 'pressure is fine']])
    expect(data.conversations).toHaveLength(1)
    expect(data.conversations[0].peer).toMatchObject({ user_id: peer.userId, username: 'export_peer' })
    expect(data.conversations[0].messages.map((message: { body: string }) => message.body)).toEqual(['hello peer', 'hello back'])
    expect(data.blocked).toEqual([])
    await t.client.call('PUT', `/blocks/${stranger.userId}`, { token: me.access })
    expect((await t.client.get('/users/me/export', me.access)).body.blocked).toEqual([{ user_id: stranger.userId, username: 'export_stranger', blocked_at: expect.any(String) }])
    expect(JSON.stringify(data)).not.toContain('a private word')
    expect(JSON.stringify(data)).not.toContain('not mine to export')
    expect((await t.client.get('/users/me/export')).status).toBe(401)
  })

  test('an export of 3,000 messages in 40 conversations is whole and in order; EXPORT_RATE_LIMIT holds under a burst', async () => {
    const f = await createTestApp({ EXPORT_RATE_LIMIT: '2' })
    const me = await f.client.register('big_exporter')
    const peers = await Promise.all(Array.from({ length: 40 }, (_, i) => f.client.register(`big_peer_${i}`)))
    // Written straight to the store: the export's paging is what is tested, not the posting.
    for (const [index, peer] of peers.entries()) {
      const conversationId = Bun.randomUUIDv7()
      const [a, b] = [me.userId, peer.userId].sort() as [string, string]
      await f.context.db.run('INSERT INTO conversations (conversation_id, user_a, user_b, last_seq, created_at, updated_at) VALUES ($1, $2, $3, 75, $4, $4)', [conversationId, a, b, new Date().toISOString()])
      const rows = Array.from({ length: 75 }, (_, i) => [Bun.randomUUIDv7(), conversationId, i + 1, i % 2 ? peer.userId : me.userId, `message ${index}.${i + 1}`, new Date().toISOString()])
      await f.context.db.run(
        `INSERT INTO direct_messages (message_id, conversation_id, seq, author_id, body, created_at) VALUES ${rows.map((_, r) => `(${[1, 2, 3, 4, 5, 6].map((c) => `$${r * 6 + c}`).join(', ')})`).join(', ')}`,
        rows.flat(),
      )
    }
    const replies = await Promise.all(Array.from({ length: 40 }, () => f.client.get('/users/me/export', me.access)))
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(2)
    expect(replies.filter((reply) => reply.status === 429)).toHaveLength(38)
    const data = replies.find((reply) => reply.status === 200)!.body
    expect(data.conversations).toHaveLength(40)
    for (const conversation of data.conversations)
      expect(conversation.messages.map((message: { seq: number }) => message.seq)).toEqual(Array.from({ length: 75 }, (_, i) => i + 1))
  }, 30_000)

  test('the purge erases accounts deleted more than USER_PURGE_AFTER ago, and nothing else', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    const [old, recent, live] = [await f.client.register('purged_old'), await f.client.register('purged_recent'), await f.client.register('purged_live')]
    for (const user of [old, recent]) await f.client.delete(`/users/${user.userId}`, root.access)
    await f.context.db.run("UPDATE users SET deleted_at = '2000-01-01T00:00:00.000Z' WHERE user_id = $1", [old.userId])
    expect(await f.context.users.purgeDeleted(f.config.userPurgeAfter)).toBe(1)
    const left = (await f.context.db.all<{ username: string }>("SELECT username FROM users WHERE username LIKE 'purged_%' ORDER BY username")).map((row) => row.username)
    expect(left).toEqual(['purged_live', 'purged_recent'])
    expect(await f.context.users.purgeDeleted(f.config.userPurgeAfter)).toBe(0)
    expect((await f.client.get('/auth/me', live.access)).status).toBe(200)
  })

  test('forty deletions and restorations of one account at once leave it in one state, and the counts exact', async () => {
    const f = await createTestApp()
    const root = await f.client.loginAdmin()
    const user = await f.client.register('flipped')
    await f.client.delete(`/users/${user.userId}`, root.access)
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 ? f.client.post(`/users/${user.userId}/restore`, undefined, root.access) : f.client.delete(`/users/${user.userId}`, root.access),
      ),
    )
    expect(replies.every((reply) => reply.status === 200 || refusal(reply).reason === 'not_deleted')).toBe(true)
    const status = (await f.client.get(`/users/${user.userId}`, root.access)).body.status
    expect(['active', 'deleted']).toContain(status)
    for (const query of ['', '&status=deleted', '&status=active']) {
      const listed = (await f.client.get(`/users?limit=200${query}`, root.access)).body
      expect({ query, total: listed.total_count }).toEqual({ query, total: listed.users.length })
    }
  })
})
