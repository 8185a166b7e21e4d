import { afterAll, describe, expect, test } from 'bun:test'
import { closeTestResources, STORE, startTestServer } from '../support/harness'
import { lobby } from '../support/lobby'
import { follower, subscribe } from '../support/realtime'

// Room chat: who reads and writes, paging, idempotent resends, edit and delete rights, limits, and the websocket.

afterAll(closeTestResources)

async function chatWorld(env: Record<string, string> = {}) {
  const server = await startTestServer(env)
  const { client } = server
  const l = lobby(client)
  const owner = await client.register('chat_owner')
  const player = await client.register('chat_player')
  const invitee = await client.register('chat_invitee')
  const stranger = await client.register('chat_stranger')
  const admin = await client.loginAdmin()
  const room = await l.createRoom(owner, { max_players: 6 })
  await l.seat(owner, room.room_id, player)
  await l.invite(owner, room.room_id, invitee)
  const path = `/rooms/${room.room_id}/messages`
  const say = (who: { access: string }, body: unknown) => client.post(path, body, who.access)
  return { server, client, l, owner, player, invitee, stranger, admin, room, path, say }
}

describe(`room chat on ${STORE}`, () => {
  test('players write and read; an invitee and an admin see the room but may not write; a stranger cannot learn it exists', async () => {
    const { client, owner, player, invitee, stranger, admin, room, path, say } = await chatWorld()
    const first = await say(owner, { body: 'Morning, crew' })
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject({
      room_id: room.room_id,
      seq: expect.any(Number),
      author_id: owner.userId,
      author_name: 'chat_owner',
      body: 'Morning, crew',
      deleted_at: null,
    })
    expect((await say(player, { body: 'Morning' })).status).toBe(201)
    expect((await client.get(path, player.access)).body.messages.map((message: { body: string }) => message.body)).toEqual(['Morning', 'Morning, crew'])
    expect((await client.get(path, admin.access)).status).toBe(200)
    expect((await say(admin, { body: 'Admins do not chat here' })).body).toMatchObject({ error: 'forbidden', reason: 'not_a_player' })
    expect((await client.get(path, invitee.access)).body).toMatchObject({ error: 'forbidden', reason: 'not_a_player' })
    expect((await say(invitee, { body: 'Hi?' })).body).toMatchObject({ error: 'forbidden', reason: 'not_a_player' })
    // A stranger gets exactly what a room that does not exist gets.
    const ghost = `/rooms/${crypto.randomUUID()}/messages`
    const pairs = [
      [await client.get(path, stranger.access), await client.get(ghost, stranger.access)],
      [await say(stranger, { body: 'Hello' }), await client.post(ghost, { body: 'Hello' }, stranger.access)],
    ] as const
    for (const [reply, none] of pairs) expect({ status: reply.status, error: reply.body.error }).toEqual({ status: none.status, error: none.body.error })
    expect((await client.get(path, stranger.access)).status).toBe(404)
    // A player who leaves keeps no access; the room closed by its owner stays readable to its players, and closed to writing.
    expect((await client.delete(`/rooms/${room.room_id}/members/me`, player.access)).status).toBe(200)
    expect((await client.get(path, player.access)).status).toBe(404)
    expect((await client.post(`/rooms/${room.room_id}/close`, undefined, owner.access)).status).toBe(200)
    expect((await client.get(path, owner.access)).body.messages).toHaveLength(2)
    expect((await say(owner, { body: 'Anyone?' })).body).toMatchObject({ error: 'conflict', reason: 'room_closed' })
  })

  test('paging: every message exactly once, in order, backwards and forwards, with many messages written in one millisecond', async () => {
    const { client, owner, player, path, say } = await chatWorld()
    await Promise.all(Array.from({ length: 45 }, (_, i) => say(i % 2 ? owner : player, { body: `line ${i}` })))
    const all: number[] = []
    let cursor: string | null | undefined
    do {
      const page = await client.get(`${path}?limit=7${cursor ? `&before=${cursor}` : ''}`, owner.access)
      expect(page.status).toBe(200)
      all.push(...page.body.messages.map((message: { seq: number }) => message.seq))
      cursor = page.body.older
    } while (cursor)
    // The chat stream numbers joins too: the messages' numbers are what the log gave them, newest first, each once.
    expect(all).toHaveLength(45)
    expect(new Set(all).size).toBe(45)
    expect(all).toEqual([...all].sort((a, b) => b - a))
    // Forwards from the start, the way a client catches up: pages of the oldest first, each newest first.
    const forward: number[] = []
    let after = 'm0'
    for (;;) {
      const page = await client.get(`${path}?limit=10&after=${after}`, owner.access)
      if (page.body.messages.length === 0) break
      forward.push(...[...page.body.messages].reverse().map((message: { seq: number }) => message.seq))
      after = page.body.newer
    }
    expect(forward).toEqual([...all].reverse())
    for (const bad of ['before=12', 'after=m-1', 'before=mZZ', 'limit=0', 'limit=201', `before=m${'z'.repeat(7)}`])
      expect({ bad, status: (await client.get(`${path}?${bad}`, owner.access)).status }).toEqual({ bad, status: 422 })
    // Cursors past 2^31 - 1 (m zik0zj) stand for 2^31 - 1: the newest page, and nothing after.
    expect((await client.get(`${path}?before=mzzzzzz&limit=7`, owner.access)).body.messages.map((message: { seq: number }) => message.seq)).toEqual(all.slice(0, 7))
    expect((await client.get(`${path}?after=mzzzzzz`, owner.access)).body.messages).toEqual([])
  })

  test('a resend with the same client_id answers the stored message, even twenty at once; another client_id is another message', async () => {
    const { client, owner, path, say } = await chatWorld()
    const replies = await Promise.all(Array.from({ length: 20 }, () => say(owner, { body: 'Valve 3 open', client_id: 'c-42' })))
    expect(replies.filter((reply) => reply.status === 201)).toHaveLength(1)
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(19)
    expect(new Set(replies.map((reply) => reply.body.message_id)).size).toBe(1)
    expect((await say(owner, { body: 'Valve 3 open', client_id: 'c-43' })).status).toBe(201)
    expect((await client.get(path, owner.access)).body.messages).toHaveLength(2)
  })

  test("a burst of 40 to one room (written together while the room's lock is held): each sender gets their own answer; refusals and resends spoil nothing", async () => {
    const { client, owner, player, invitee, stranger, path, say } = await chatWorld()
    type Send = { who: typeof owner; body: { body: string; client_id?: string }; expected: number | 'once' }
    const readings = Array.from({ length: 30 }, (_, i): Send => ({ who: i % 2 ? owner : player, body: { body: `reading ${i}`, client_id: `r-${i}` }, expected: 201 }))
    const trips = Array.from({ length: 3 }, (): Send => ({ who: owner, body: { body: 'Pump 2 tripped', client_id: 'trip' }, expected: 'once' }))
    const invitees = Array.from({ length: 4 }, (): Send => ({ who: invitee, body: { body: 'Can I?' }, expected: 403 }))
    const strangers = Array.from({ length: 3 }, (): Send => ({ who: stranger, body: { body: 'Hello' }, expected: 404 }))
    // Interleaved, so that every group holds players, refusals and resends together.
    const burst = readings.flatMap((reading, i) => [reading, ...(i % 3 === 0 ? [trips, invitees, strangers].flatMap((kind) => kind.splice(0, 1)) : [])])
    expect(burst).toHaveLength(40)
    const replies = await Promise.all(burst.map(({ who, body }) => say(who, body)))
    burst.forEach(({ who, body, expected }, index) => {
      const reply = replies[index]!
      if (typeof expected === 'number') expect(reply.status).toBe(expected)
      // Each created message is the one its sender sent.
      if (reply.status === 201) expect(reply.body).toMatchObject({ author_id: who.userId, body: body.body, client_id: body.client_id })
    })
    const tripped = replies.filter((_, index) => burst[index]!.expected === 'once')
    expect(tripped.map((reply) => reply.status).sort()).toEqual([200, 200, 201])
    expect(new Set(tripped.map((reply) => reply.body.message_id)).size).toBe(1)
    // What was answered is what is stored: 31 messages under consecutive numbers (none taken by a refusal), each as its author was told.
    const stored = (await client.get(`${path}?limit=100`, owner.access)).body.messages as Array<{ seq: number; message_id: string; body: string }>
    expect(stored).toHaveLength(31)
    const seqs = stored.map((message) => message.seq).sort((a, b) => a - b)
    expect(seqs.at(-1)! - seqs[0]!).toBe(30)
    const answered = replies.filter((reply) => reply.status === 201).map((reply) => ({ seq: reply.body.seq, message_id: reply.body.message_id, body: reply.body.body }))
    expect(answered.sort((a, b) => a.seq - b.seq)).toEqual(stored.map(({ seq, message_id, body }) => ({ seq, message_id, body })).sort((a, b) => a.seq - b.seq))
  })

  test('authors edit their own; authors, the owner and admins delete; a deleted message keeps its place, empty', async () => {
    const { server, client, owner, player, admin, room, path, say } = await chatWorld()
    const mine = (await say(player, { body: 'Pump 1 is loud' })).body
    const theirs = (await say(owner, { body: 'Check the bearings' })).body
    const edit = (who: { access: string }, id: string, body: string) => client.call('PATCH', `${path}/${id}`, { token: who.access, body: { body } })
    expect((await edit(player, mine.message_id, 'Pump 1 is very loud')).body).toMatchObject({ body: 'Pump 1 is very loud', edited_at: expect.any(String) })
    expect((await edit(player, theirs.message_id, 'not mine')).body).toMatchObject({ error: 'forbidden', reason: 'not_author' })
    expect((await edit(admin, theirs.message_id, 'not mine')).body).toMatchObject({ error: 'forbidden', reason: 'not_author' })
    expect((await client.delete(`${path}/${theirs.message_id}`, player.access)).body).toMatchObject({ error: 'forbidden', reason: 'not_author' })
    expect((await client.delete(`${path}/${mine.message_id}`, owner.access)).status).toBe(200)
    expect((await client.delete(`${path}/${mine.message_id}`, owner.access)).status).toBe(200)
    expect((await client.delete(`${path}/${theirs.message_id}`, admin.access)).status).toBe(200)
    expect((await edit(player, mine.message_id, 'back')).body).toMatchObject({ error: 'conflict', reason: 'message_deleted' })
    expect((await client.delete(`${path}/${crypto.randomUUID()}`, owner.access)).status).toBe(404)
    // A replay of the chat stream shows no more of a deleted message than the history does.
    const replay = await follower(server.baseUrl, owner.access)
    await subscribe(replay, `chat:${room.room_id}`, 0)
    const texts = replay
      .events(`chat:${room.room_id}`)
      .filter((frame) => frame.event.body !== undefined)
      .map((frame) => frame.event.body)
    expect(texts).toEqual(['', '', ''])
    const page = (await client.get(path, owner.access)).body.messages
    expect(page.map((message: { body: string; deleted_at: string | null }) => [message.body, message.deleted_at !== null])).toEqual([
      ['', true],
      ['', true],
    ])
  })

  test('text only, within MESSAGE_MAX_LENGTH after NFC; MESSAGE_RATE_LIMIT holds against a burst of 40', async () => {
    const { client, owner, path, say } = await chatWorld({ MESSAGE_MAX_LENGTH: '10', MESSAGE_RATE_LIMIT: '5' })
    for (const body of ['nul\u0000', 'two\nlines', 'rtl\u202eevil', 'lone\ud800', '', 'x'.repeat(11), '\uFB2C'.repeat(4), '\u00ad', '  ', '\u2800', '\u0301\u0301'])
      expect({ body, status: (await say(owner, { body })).status }).toEqual({ body, status: 422 })
    // The limit counts characters after NFC, over REST as over the websocket: ten accented letters fit in 10.
    expect((await say(owner, { body: 'e\u0301'.repeat(10) })).body.body).toBe('\u00e9'.repeat(10))
    expect((await say(owner, { body: '<b>hi</b>' })).body.body).toBe('<b>hi</b>')
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => say(owner, { body: `n${i}` })))
    expect(burst.filter((reply) => reply.status === 201)).toHaveLength(3)
    expect(burst.filter((reply) => reply.status === 429)).toHaveLength(37)
    expect((await client.get(path, owner.access)).body.messages).toHaveLength(5)
  })

  test('edits and deletions count against MESSAGE_RATE_LIMIT under a burst; deleting a deleted message costs nothing; an invitee learns nothing of message ids', async () => {
    const { client, owner, invitee, path, say } = await chatWorld({ MESSAGE_RATE_LIMIT: '6' })
    const ids = [(await say(owner, { body: 'one' })).body.message_id, (await say(owner, { body: 'two' })).body.message_id]
    expect((await client.delete(`${path}/${ids[1]}`, owner.access)).status).toBe(200)
    for (let i = 0; i < 5; i++) expect((await client.delete(`${path}/${ids[1]}`, owner.access)).status).toBe(200)
    const edits = await Promise.all(Array.from({ length: 40 }, (_, i) => client.call('PATCH', `${path}/${ids[0]}`, { token: owner.access, body: { body: `edit ${i}` } })))
    expect(edits.filter((reply) => reply.status === 200)).toHaveLength(3)
    expect(edits.filter((reply) => reply.status === 429)).toHaveLength(37)
    expect((await client.delete(`${path}/${ids[0]}`, owner.access)).status).toBe(429)
    // Refused before the message is looked up: a real id and a made-up one answer alike.
    for (const id of [ids[0], crypto.randomUUID()]) {
      expect((await client.delete(`${path}/${id}`, invitee.access)).body).toMatchObject({ error: 'forbidden', reason: 'not_author' })
      expect((await client.call('PATCH', `${path}/${id}`, { token: invitee.access, body: { body: 'x' } })).body).toMatchObject({ error: 'forbidden', reason: 'not_author' })
    }
  })

  test('a message is edited at most 50 times, so that deleting it blanks a bounded number of events', async () => {
    const { client, owner, path, say } = await chatWorld()
    const id = (await say(owner, { body: 'draft' })).body.message_id
    const edit = (body: string) => client.call('PATCH', `${path}/${id}`, { token: owner.access, body: { body } })
    for (let i = 1; i <= 50; i++) expect((await edit(`draft ${i}`)).status).toBe(200)
    const refused = await edit('draft 51')
    expect([refused.status, refused.body.error, refused.body.reason, refused.body.message]).toEqual([409, 'conflict', 'edit_limit', 'A message can be edited 50 times; write a new one'])
    expect((await client.delete(`${path}/${id}`, owner.access)).status).toBe(200)
  })

  test('over the websocket: send is acknowledged with its number, others hear it live, a resend is harmless; refusals are error frames', async () => {
    const { server, owner, player, invitee, room } = await chatWorld()
    const stream = `chat:${room.room_id}`
    const [ownerSocket, playerSocket, inviteeSocket] = [
      await follower(server.baseUrl, owner.access),
      await follower(server.baseUrl, player.access),
      await follower(server.baseUrl, invitee.access),
    ]
    await subscribe(playerSocket, stream)
    // An invitee sees the room, not its chat: forbidden, as over REST.
    expect(await subscribe(inviteeSocket, stream)).toMatchObject({ op: 'error', error: 'forbidden' })
    ownerSocket.send({ op: 'send', room_id: room.room_id, body: 'All stations report', client_id: 'w-1' })
    const sent = { ...(await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'sent'))) }
    expect(sent.client_id).toBe('w-1')
    expect(sent.seq).toBeGreaterThan(0)
    const heard = await playerSocket.until(() => playerSocket.events(stream)[0])
    expect(heard.event).toMatchObject({ type: 'message_posted', message_id: sent.message_id, body: 'All stations report', author_id: owner.userId })
    ownerSocket.send({ op: 'send', room_id: room.room_id, body: 'All stations report', client_id: 'w-1' })
    await ownerSocket.until(() => ownerSocket.frames.filter((frame) => frame.op === 'sent').length === 2)
    expect(ownerSocket.frames.filter((frame) => frame.op === 'sent').map((frame) => frame.message_id)).toEqual([sent.message_id, sent.message_id])
    inviteeSocket.send({ op: 'send', room_id: room.room_id, body: 'let me in', client_id: 'w-2' })
    expect(await inviteeSocket.until(() => inviteeSocket.frames.find((frame) => frame.op === 'error' && frame.client_id === 'w-2'))).toMatchObject({
      error: 'forbidden',
      reason: 'not_a_player',
    })
    // The text rules of REST: nothing invisible, something visible, the limit after NFC.
    for (const [client_id, body] of [['w-3', 'bad\u0007bell'], ['w-3a', '\u2800'], ['w-3b', 'soft\u00adhyphen'], ['w-3c', '\uFB2C'.repeat(700)]]) {
      ownerSocket.send({ op: 'send', room_id: room.room_id, body, client_id })
      expect(await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.client_id === client_id && frame.op === 'error'))).toMatchObject({
        error: 'validation_error',
      })
    }
    ownerSocket.send({ op: 'send', room_id: room.room_id, body: 'e\u0301'.repeat(2000), client_id: 'w-3d' })
    await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'sent' && frame.client_id === 'w-3d'))
    // A kicked player's chat ends with the kick, on the chat stream itself.
    await server.client.delete(`/rooms/${room.room_id}/members/${player.userId}`, owner.access)
    await playerSocket.until(() => playerSocket.frames.find((frame) => frame.op === 'unsubscribed' && frame.stream === stream))
    ownerSocket.send({ op: 'send', room_id: room.room_id, body: 'after the kick', client_id: 'w-4' })
    await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'sent' && frame.client_id === 'w-4'))
    await Bun.sleep(100)
    expect(playerSocket.events(stream).map((frame) => frame.event.type)).toEqual(['message_posted', 'message_posted', 'member_kicked'])
  })
})

describe(`presence and typing on ${STORE}`, () => {
  test("a chat starts with who is online; comings, goings and typing follow, to the room's players only", async () => {
    const { server, owner, player, invitee, room } = await chatWorld()
    const stream = `chat:${room.room_id}`
    const ownerSocket = await follower(server.baseUrl, owner.access)
    expect(await subscribe(ownerSocket, stream)).toMatchObject({ op: 'subscribed', online: [owner.userId] })
    // The player comes online: the owner hears it; the player's chat starts with both.
    const playerSocket = await follower(server.baseUrl, player.access)
    expect(await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'presence' && frame.user_id === player.userId))).toEqual({
      op: 'presence',
      room_id: room.room_id,
      user_id: player.userId,
      online: true,
    })
    const joined = await subscribe(playerSocket, stream)
    expect([...joined.online].sort()).toEqual([owner.userId, player.userId].sort())
    playerSocket.send({ op: 'typing', room_id: room.room_id })
    expect(await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'typing'))).toEqual({
      op: 'typing',
      room_id: room.room_id,
      user_id: player.userId,
    })
    // An invitee may not type into the room, nor hear its presence.
    const inviteeSocket = await follower(server.baseUrl, invitee.access)
    inviteeSocket.send({ op: 'typing', room_id: room.room_id })
    expect(await inviteeSocket.until(() => inviteeSocket.frames.find((frame) => frame.op === 'error'))).toMatchObject({ error: 'forbidden', reason: 'not_a_player' })
    // The player's last socket closes: offline.
    playerSocket.close()
    await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'presence' && frame.user_id === player.userId && frame.online === false))
    expect(ownerSocket.frames.filter((frame) => frame.op === 'typing')).toHaveLength(1)
    expect(inviteeSocket.frames.some((frame) => frame.op === 'presence' || frame.op === 'typing')).toBe(false)
  })

  test('typing: at most one signal per socket and room every two seconds, however many frames; none in a closed room (SECURITY 29)', async () => {
    const { server, client, owner, player, room } = await chatWorld({ REALTIME_MESSAGE_RATE: '1000' })
    const stream = `chat:${room.room_id}`
    const ownerSocket = await follower(server.baseUrl, owner.access)
    await subscribe(ownerSocket, stream)
    const playerSocket = await follower(server.baseUrl, player.access)
    await subscribe(playerSocket, stream)
    for (let i = 0; i < 50; i++) playerSocket.send({ op: 'typing', room_id: room.room_id })
    playerSocket.send({ op: 'ping' })
    await playerSocket.until(() => playerSocket.frames.find((frame) => frame.op === 'pong'))
    await Bun.sleep(100)
    expect(ownerSocket.frames.filter((frame) => frame.op === 'typing')).toHaveLength(1)
    // The room closes: its chat stream says so, and typing there is refused.
    expect((await client.post(`/rooms/${room.room_id}/close`, undefined, owner.access)).status).toBe(200)
    await playerSocket.until(() => playerSocket.types(stream).includes('room_closed'))
    await Bun.sleep(2000)
    playerSocket.send({ op: 'typing', room_id: room.room_id })
    expect(await playerSocket.until(() => playerSocket.frames.find((frame) => frame.op === 'error'))).toEqual({ op: 'error', error: 'conflict', reason: 'room_closed', stream })
    expect(ownerSocket.frames.filter((frame) => frame.op === 'typing')).toHaveLength(1)
  })

  test('a client reconnecting in a loop tells nobody: one online, then one offline a second after its last socket closed (SECURITY 29)', async () => {
    const { server, owner, player, room } = await chatWorld()
    const watcher = await follower(server.baseUrl, owner.access)
    await subscribe(watcher, `chat:${room.room_id}`)
    for (let i = 0; i < 15; i++) {
      const socket = await follower(server.baseUrl, player.access)
      socket.close()
      await socket.closed()
    }
    const changes = () => watcher.frames.filter((frame) => frame.op === 'presence' && frame.user_id === player.userId).map((frame) => frame.online)
    await watcher.until(() => changes().length === 2, 5000)
    await Bun.sleep(300)
    expect(changes()).toEqual([true, false])
  })

  test("a renewal makes the instance's presence rows say who is here: a stray row goes (its user said offline), a missing one comes back", async () => {
    const { server, owner, player, room } = await chatWorld()
    const { presence, db } = server.context
    const watcher = await follower(server.baseUrl, owner.access)
    await subscribe(watcher, `chat:${room.room_id}`)
    const rows = async () => (await db.all<{ user_id: string }>('SELECT user_id FROM presence WHERE instance_id = $1', [presence.instanceId])).map((row) => row.user_id).sort()
    // A departure whose delete failed left a row behind; another instance reaped the owner's row.
    await db.run('INSERT INTO presence (user_id, instance_id, seen_at) VALUES ($1, $2, $3)', [player.userId, presence.instanceId, new Date().toISOString()])
    await db.run('DELETE FROM presence WHERE user_id = $1', [owner.userId])
    await presence.renew()
    expect(await rows()).toEqual([owner.userId])
    await watcher.until(() => watcher.frames.find((frame) => frame.op === 'presence' && frame.user_id === player.userId && frame.online === false))
  })

  test('a renewal writes one row for the whole instance, however many players it holds: their rows stay as written', async () => {
    const { server, owner, player } = await chatWorld()
    const { presence, db } = server.context
    const sockets = await Promise.all([owner, player].map((person) => follower(server.baseUrl, person.access)))
    await presence.renew()
    const snapshot = async () => ({
      users: await db.all<{ user_id: string; seen_at: string }>('SELECT user_id, seen_at FROM presence WHERE instance_id = $1 ORDER BY user_id', [presence.instanceId]),
      instance: (await db.get<{ seen_at: string }>('SELECT seen_at FROM presence_instances WHERE instance_id = $1', [presence.instanceId]))!.seen_at,
    })
    const before = await snapshot()
    await Bun.sleep(5)
    await presence.renew()
    const after = await snapshot()
    expect(after.users).toEqual(before.users)
    expect(after.users).toHaveLength(2)
    expect(after.instance > before.instance).toBe(true)
    for (const socket of sockets) socket.close()
  })
})

