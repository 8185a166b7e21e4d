import { afterAll, describe, expect, test } from 'bun:test'
import { closeTestResources, STORE, startTestServer } from '../support/harness'
import { follower } from '../support/realtime'

// Direct messages: conversations made by the first message, history, unread counts and read markers, blocks, live delivery.

afterAll(closeTestResources)

describe(`direct messages on ${STORE}`, () => {
  test('the first message starts the conversation; both sides see it listed with the last message and what is unread', async () => {
    const { client } = await startTestServer()
    const ann = await client.register('dm_ann')
    const ben = await client.register('dm_ben')
    const write = (from: { access: string }, to: { userId: string }, body: string, client_id?: string) =>
      client.post(`/dms/${to.userId}/messages`, { body, client_id }, from.access)
    expect((await client.get('/dms', ann.access)).body).toMatchObject({ conversations: [], total_count: 0 })
    const first = await write(ann, ben, 'Are you on tonight?')
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject({ seq: 1, author_id: ann.userId, body: 'Are you on tonight?' })
    await write(ann, ben, 'Turbine hall')
    const bens = (await client.get('/dms', ben.access)).body
    expect(bens.total_count).toBe(1)
    expect(bens.conversations[0]).toMatchObject({
      peer: { user_id: ann.userId, username: 'dm_ann' },
      unread_count: 2,
      last_message: { body: 'Turbine hall', seq: 2 },
    })
    // Reading moves the marker forward only, and never past the last message.
    expect((await client.post(`/dms/${ann.userId}/read`, { last_read_seq: 1 }, ben.access)).body).toEqual({ last_read_seq: 1 })
    expect((await client.get('/dms', ben.access)).body.conversations[0].unread_count).toBe(1)
    expect((await client.post(`/dms/${ann.userId}/read`, { last_read_seq: 99 }, ben.access)).body).toEqual({ last_read_seq: 2 })
    expect((await client.post(`/dms/${ann.userId}/read`, { last_read_seq: 1 }, ben.access)).body).toEqual({ last_read_seq: 2 })
    // A reply is read by its author (and reading up to it, all before it); the other side has one unread.
    await write(ben, ann, 'Yes, from ten')
    expect((await client.get('/dms', ben.access)).body.conversations[0]).toMatchObject({ unread_count: 0, last_read_seq: 3 })
    expect((await client.get('/dms', ann.access)).body.conversations[0]).toMatchObject({ peer: { username: 'dm_ben' }, unread_count: 1, last_read_seq: 2 })
    // History, newest first, with the cursors of room chat; a resend with the same client_id is the same message.
    const page = (await client.get(`/dms/${ben.userId}/messages?limit=2`, ann.access)).body
    expect(page.messages.map((message: { seq: number }) => message.seq)).toEqual([3, 2])
    const older = (await client.get(`/dms/${ben.userId}/messages?before=${page.older}`, ann.access)).body
    expect(older).toMatchObject({ messages: [{ seq: 1 }], older: null })
    const resends = await Promise.all(Array.from({ length: 10 }, () => write(ben, ann, 'On my way', 'b-1')))
    expect(resends.filter((reply) => reply.status === 201)).toHaveLength(1)
    expect(new Set(resends.map((reply) => reply.body.message_id)).size).toBe(1)
    // Nobody else reads it; one cannot write to oneself, nor to a user who does not exist.
    const eve = await client.register('dm_eve')
    expect((await client.get(`/dms/${ben.userId}/messages`, eve.access)).body.messages).toEqual([])
    expect((await write(ann, ann, 'me')).body).toMatchObject({ error: 'conflict', reason: 'self_target' })
    expect((await write(ann, { userId: crypto.randomUUID() }, 'ghost')).status).toBe(404)
    expect((await client.post(`/dms/${eve.userId}/read`, { last_read_seq: 1 }, ann.access)).status).toBe(404)
  })

  test('a first message from both sides at once makes one conversation', async () => {
    const { client } = await startTestServer()
    const kim = await client.register('dm_kim')
    const lee = await client.register('dm_lee')
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2
          ? client.post(`/dms/${lee.userId}/messages`, { body: `k${i}` }, kim.access)
          : client.post(`/dms/${kim.userId}/messages`, { body: `l${i}` }, lee.access),
      ),
    )
    const listed = (await client.get('/dms', kim.access)).body
    expect(listed.total_count).toBe(1)
    const seqs = (await client.get(`/dms/${lee.userId}/messages`, kim.access)).body.messages.map((message: { seq: number }) => message.seq)
    expect(seqs).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
  })

  test('a block stops messages both ways until it is lifted; the blocked list shows it', async () => {
    const { client } = await startTestServer()
    const ivy = await client.register('dm_ivy')
    const max = await client.register('dm_max')
    expect((await client.call('PUT', `/blocks/${max.userId}`, { token: ivy.access })).status).toBe(200)
    expect((await client.call('PUT', `/blocks/${max.userId}`, { token: ivy.access })).status).toBe(200)
    expect((await client.get('/blocks', ivy.access)).body.blocked).toMatchObject([{ user_id: max.userId, username: 'dm_max' }])
    expect((await client.post(`/dms/${ivy.userId}/messages`, { body: 'hello?' }, max.access)).body).toMatchObject({ error: 'forbidden', reason: 'blocked_by_peer' })
    expect((await client.post(`/dms/${max.userId}/messages`, { body: 'hi' }, ivy.access)).body).toMatchObject({ error: 'conflict', reason: 'peer_blocked' })
    expect((await client.call('PUT', `/blocks/${ivy.userId}`, { token: ivy.access })).body).toMatchObject({ error: 'conflict', reason: 'self_target' })
    expect((await client.call('PUT', `/blocks/${crypto.randomUUID()}`, { token: ivy.access })).status).toBe(404)
    expect((await client.delete(`/blocks/${max.userId}`, ivy.access)).status).toBe(200)
    expect((await client.post(`/dms/${ivy.userId}/messages`, { body: 'hello again' }, max.access)).status).toBe(201)
    expect((await client.get('/blocks', ivy.access)).body.blocked).toEqual([])
  })

  test('over the websocket: a message reaches both sides on their own streams; a read marker tells the author', async () => {
    const server = await startTestServer()
    const { client } = server
    const sam = await client.register('dm_sam')
    const tia = await client.register('dm_tia')
    const [samSocket, tiaSocket] = [await follower(server.baseUrl, sam.access), await follower(server.baseUrl, tia.access)]
    await client.post(`/dms/${tia.userId}/messages`, { body: 'Pumps are on' }, sam.access)
    const heard = await tiaSocket.until(() => tiaSocket.events(tiaSocket.userStream).find((frame) => frame.event.type === 'direct_message'))
    expect(heard.event).toMatchObject({ author_id: sam.userId, recipient_id: tia.userId, body: 'Pumps are on', seq: 1 })
    await samSocket.until(() => samSocket.types(samSocket.userStream).includes('direct_message'))
    await client.post(`/dms/${sam.userId}/read`, { last_read_seq: 1 }, tia.access)
    const read = await samSocket.until(() => samSocket.events(samSocket.userStream).find((frame) => frame.event.type === 'conversation_read'))
    expect(read.event).toMatchObject({ user_id: tia.userId, last_read_seq: 1 })
  })

  test('a read marker that does not move writes nothing and tells nobody, even 40 at once; a block keeps read receipts from crossing either way (SECURITY 29)', async () => {
    const { client, context } = await startTestServer()
    const pat = await client.register('dm_pat')
    const rex = await client.register('dm_rex')
    for (const body of ['one', 'two', 'three']) await client.post(`/dms/${rex.userId}/messages`, { body }, pat.access)
    const receipts = async (userId: string) =>
      Number((await context.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE stream = $1 AND type = 'conversation_read'", [`user:${userId}`]))!.n)
    const read = (seq: number) => client.post(`/dms/${pat.userId}/read`, { last_read_seq: seq }, rex.access)

    const burst = await Promise.all(Array.from({ length: 40 }, () => read(2)))
    expect(burst.every((reply) => reply.status === 200 && reply.body.last_read_seq === 2)).toBe(true)
    expect([await receipts(rex.userId), await receipts(pat.userId)]).toEqual([1, 1])
    for (let i = 0; i < 50; i++) expect((await read(i % 3)).body).toEqual({ last_read_seq: 2 })
    expect([await receipts(rex.userId), await receipts(pat.userId)]).toEqual([1, 1])

    // Pat blocks Rex: Rex's marker still moves (his own devices hear it), Pat hears nothing of it.
    await client.call('PUT', `/blocks/${rex.userId}`, { token: pat.access })
    expect((await read(3)).body).toEqual({ last_read_seq: 3 })
    expect([await receipts(rex.userId), await receipts(pat.userId)]).toEqual([2, 1])
    // Nor the other way round: Rex blocks Pat after Pat unblocks; Pat's marker moves unseen by Rex.
    await client.delete(`/blocks/${rex.userId}`, pat.access)
    await client.post(`/dms/${pat.userId}/messages`, { body: 'four' }, rex.access)
    await client.call('PUT', `/blocks/${pat.userId}`, { token: rex.access })
    const before = await receipts(rex.userId)
    expect((await client.post(`/dms/${rex.userId}/read`, { last_read_seq: 4 }, pat.access)).body).toEqual({ last_read_seq: 4 })
    expect(await receipts(rex.userId)).toBe(before)
  })
})

describe(`retention of messages on ${STORE}`, () => {
  test('room and direct messages older than MESSAGE_RETENTION are purged; newer ones stay', async () => {
    const { client, context } = await startTestServer({ MESSAGE_RETENTION: '3600' })
    const old = await client.register('retention_old')
    const peer = await client.register('retention_peer')
    const room = (await client.post('/rooms', { room_name: 'Retention' }, old.access)).body
    await client.post(`/rooms/${room.room_id}/messages`, { body: 'from long ago' }, old.access)
    await client.post(`/dms/${peer.userId}/messages`, { body: 'also long ago' }, old.access)
    const longAgo = new Date(Date.now() - 7_200_000).toISOString()
    await context.db.run('UPDATE messages SET created_at = $1', [longAgo])
    await context.db.run('UPDATE direct_messages SET created_at = $1', [longAgo])
    await client.post(`/rooms/${room.room_id}/messages`, { body: 'today' }, old.access)
    await client.post(`/dms/${peer.userId}/messages`, { body: 'today too' }, old.access)
    expect(await context.chat.purge()).toBe(1)
    expect(await context.dms.purge()).toBe(1)
    // What was purged is not counted as unread.
    expect((await client.get('/dms', peer.access)).body.conversations[0]).toMatchObject({ unread_count: 1, last_message: { body: 'today too' } })
    expect((await client.get(`/rooms/${room.room_id}/messages`, old.access)).body.messages.map((message: { body: string }) => message.body)).toEqual(['today'])
    expect((await client.get(`/dms/${peer.userId}/messages`, old.access)).body.messages.map((message: { body: string }) => message.body)).toEqual(['today too'])
  })
})
