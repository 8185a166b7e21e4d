import { afterAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, refusal, STORE } from '../support/harness'
import { lobby, roomWorld } from '../support/lobby'

afterAll(closeTestResources)

const { t, rooms, admin, owner, guest, other, stranger } = await roomWorld()

const missingId = '01936b2e-7c4a-7f3e-9b1d-2f5c8a9e4d10'

describe(`rooms on ${STORE}: create and read`, () => {
  test('the creator is the owner and first player, as host by default, with ROOM_MAX_PLAYERS seats', async () => {
    const reply = await t.client.post('/rooms', { room_name: 'Boiler room' }, owner.access)
    expect(reply.status).toBe(201)
    expect(reply.body).toMatchObject({
      room_name: 'Boiler room',
      owner_id: owner.userId,
      max_players: 8,
      is_closed: false,
      is_ready: false,
      players: [{ user_id: owner.userId, username: 'room_owner', game_role: 'host' }],
    })
    expect(reply.body.players[0].joined_at).toBe(reply.body.created_at)
    const custom = await rooms.createRoom(owner, { max_players: 3, game_role: 'shift lead' })
    expect(custom.max_players).toBe(3)
    expect(custom.players[0]!.game_role).toBe('shift lead')
  })

  test('a room of one seat is ready at once', async () => {
    const reply = await t.client.post('/rooms', { room_name: 'Solo', max_players: 1 }, owner.access)
    expect(reply.body).toMatchObject({ is_ready: true, is_closed: false })
  })

  test('bad rooms are 422: empty or long names, seats out of range, unknown fields', async () => {
    const cases = [
      [{ room_name: '' }, '/room_name'],
      [{ room_name: 'x'.repeat(101) }, '/room_name'],
      [{ room_name: 'r', max_players: 0 }, '/max_players'],
      [{ room_name: 'r', max_players: 65 }, '/max_players'],
      [{ room_name: 'r', max_players: 2.5 }, '/max_players'],
      [{ room_name: 'r', game_role: '' }, '/game_role'],
      [{ room_name: 'r', owner_id: admin.userId }, '/owner_id'],
      // PostgreSQL cannot store NUL in text; both stores refuse it the same way.
      [{ room_name: 'nul\u0000name' }, '/room_name'],
    ] as const
    for (const [body, field] of cases) {
      const reply = await t.client.post('/rooms', body, owner.access)
      expect({ body, status: reply.status }).toEqual({ body, status: 422 })
      expect(reply.body.details.map((detail: { field: string }) => detail.field)).toContain(field)
    }
  })

  test('names are plain text: control characters, bidi overrides and unpaired surrogates are 422; text is stored as NFC', async () => {
    const refused = {
      newline: 'two\nlines',
      escape: 'esc\u001b[31mred',
      c1Control: 'c1\u0085',
      rightToLeftOverride: 'user\u202etxt.exe',
      isolate: 'a\u2067b',
      loneHighSurrogate: 'half \ud800',
      loneLowSurrogate: '\udc00 half',
      zeroWidthOnly: '\u200b\u200b',
      hangulFiller: '\u3164',
      byteOrderMark: '\ufeffname',
      lineSeparator: 'a\u2028b',
      tagCharacters: 'flag\udb40\udc67\udb40\udc62',
      leftToRightMark: 'name\u200e',
      // Invisible format characters (Unicode's default-ignorables that are neither joiners nor variation selectors).
      softHyphen: 'na\u00adme',
      combiningGraphemeJoiner: 'na\u034fme',
      mongolianVowelSeparator: 'na\u180eme',
      deprecatedFormat: 'na\u206ame',
      interlinearAnnotation: 'na\ufff9me',
      shorthandFormat: 'na\u{1BCA0}me',
      musicalFormat: 'na\u{1D173}me',
      khmerInherentVowel: 'na\u17b4me',
    }
    for (const [name, room_name] of Object.entries(refused)) {
      for (const body of [{ room_name }, { room_name: 'fine', game_role: room_name }]) {
        const reply = await t.client.post('/rooms', body, owner.access)
        expect({ name, status: reply.status }).toEqual({ name, status: 422 })
        expect(reply.body.details[0].message).toBe(
          'must contain a visible character, not only spaces, marks or joiners, and no control, invisible or bidirectional-override characters, or unpaired surrogates',
        )
      }
    }
    // Text that travels as JSON escapes: an unpaired surrogate cannot hide there either.
    expect((await t.client.post('/rooms', '{"room_name":"x\\ud800y"}', owner.access)).status).toBe(422)

    const decomposed = 'Cafe\u0301 \u{1F3ED} shift'
    const created = await t.client.post('/rooms', { room_name: decomposed, game_role: 'ope\u0301rateur' }, owner.access)
    expect(created.status).toBe(201)
    expect(created.body.room_name).toBe('Caf\u00e9 \u{1F3ED} shift')
    expect(created.body.players[0].game_role).toBe('op\u00e9rateur')
    const invitation = await t.client.post(`/rooms/${created.body.room_id}/invite`, { user_name: 'room_guest', player_role: 'te\u0301moin' }, owner.access)
    expect(invitation.body.player_role).toBe('t\u00e9moin')
    // Emoji made with zero-width joiners and variation selectors, flags and musical notes stay welcome.
    for (const room_name of ['Family \u{1F468}\u200d\u{1F469}\u200d\u{1F467}', '\u2764\ufe0f', '\u{1F1FA}\u{1F1E6}', '\u{1D11E} score'])
      expect({ room_name, status: (await t.client.post('/rooms', { room_name }, owner.access)).status }).toEqual({ room_name, status: 201 })
  })

  test('a name has something visible in it: spaces, marks, joiners or the Braille blank alone are 422', async () => {
    for (const room_name of ['   ', '\u3000', '\u2800\u2800', '\u0301', '\u200d\u200d', '\ufe0f', ' \u200c ', '\u{E0100}', '\u064b\u064b', '\u05b0'])
      for (const body of [{ room_name }, { room_name: 'fine', game_role: room_name }]) {
        const reply = await t.client.post('/rooms', body, owner.access)
        expect({ room_name, status: reply.status }).toEqual({ room_name, status: 422 })
        expect(reply.body.details[0].message).toBe(
          'must contain a visible character, not only spaces, marks or joiners, and no control, invisible or bidirectional-override characters, or unpaired surrogates',
        )
      }
    // A decomposed name counts as it is stored: 100 accented letters arrive as 200 characters and fit.
    expect((await t.client.post('/rooms', { room_name: 'e\u0301'.repeat(100) }, owner.access)).status).toBe(201)
  })

  test('the length limit holds for the text as stored: characters that grow in NFC count as they grow', async () => {
    // U+FB2C becomes three characters in NFC: 40 of them are 120 stored characters, past room_name's 100.
    const grown = await t.client.post('/rooms', { room_name: '\uFB2C'.repeat(40) }, owner.access)
    expect(grown.status).toBe(422)
    expect(grown.body.details).toEqual([{ field: '/room_name', message: 'must be at most 100 characters once normalised (NFC)' }])
    const role = await t.client.post('/rooms', { room_name: 'fine', game_role: '\u{1D160}'.repeat(22) }, owner.access)
    expect(role.status).toBe(422)
    expect(role.body.details[0].field).toBe('/game_role')
    expect((await t.client.post('/rooms', { room_name: '\uFB2C'.repeat(33) }, owner.access)).status).toBe(201)
  })

  test('GET and POST /rooms/{id} show the room to members, invitees and admins, 404 to anyone else', async () => {
    const room = await rooms.createRoom(owner)
    await rooms.invite(owner, room.room_id, guest)
    for (const viewer of [owner, guest, admin])
      for (const method of ['GET', 'POST']) {
        const reply = await t.client.call(method, `/rooms/${room.room_id}`, { token: viewer.access })
        expect(reply.status).toBe(200)
        expect(reply.body.room_id).toBe(room.room_id)
      }
    // A room the caller may not see answers exactly like a room that does not exist.
    const hidden = await t.client.get(`/rooms/${room.room_id}`, stranger.access)
    const missing = await t.client.get(`/rooms/${missingId}`, stranger.access)
    expect(hidden.status).toBe(404)
    expect({ ...hidden.body, timestamp: 0 }).toEqual({ ...missing.body, timestamp: 0 })
    expect((await t.client.get('/rooms/not-a-uuid', owner.access)).status).toBe(400)
  })
})

describe(`rooms on ${STORE}: kick, leave, close`, () => {
  test('the owner or an admin kicks; a player cannot; the owner cannot kick themself', async () => {
    const room = await rooms.createRoom(owner)
    await rooms.seat(owner, room.room_id, guest)
    await rooms.seat(owner, room.room_id, other)
    const byPlayer = await t.client.delete(`/rooms/${room.room_id}/members/${other.userId}`, guest.access)
    expect(refusal(byPlayer)).toEqual({ status: 403, error: 'forbidden', reason: 'not_room_manager' })
    const self = await t.client.delete(`/rooms/${room.room_id}/members/${owner.userId}`, owner.access)
    expect(refusal(self)).toEqual({ status: 409, error: 'conflict', reason: 'self_target' })
    const kicked = await t.client.delete(`/rooms/${room.room_id}/members/${guest.userId}`, owner.access)
    expect(kicked.status).toBe(200)
    expect(kicked.body.success).toBe(true)
    expect(await rooms.players(room.room_id, owner)).toEqual([owner.userId, other.userId])
    expect((await t.client.get(`/rooms/${room.room_id}`, guest.access)).status).toBe(404)
    expect((await t.client.delete(`/rooms/${room.room_id}/members/${guest.userId}`, owner.access)).status).toBe(404)
    expect((await t.client.delete(`/rooms/${room.room_id}/members/${other.userId}`, admin.access)).status).toBe(200)
    expect((await t.client.delete(`/rooms/${room.room_id}/members/${stranger.userId}`, stranger.access)).status).toBe(404)
  })

  test('when the owner leaves, the earliest-joined player owns the room; the last one out closes it', async () => {
    const room = await rooms.createRoom(owner)
    await rooms.seat(owner, room.room_id, guest)
    await Bun.sleep(2)
    await rooms.seat(owner, room.room_id, other)
    const left = await t.client.delete(`/rooms/${room.room_id}/members/me`, owner.access)
    expect(left.status).toBe(200)
    const after = (await t.client.get(`/rooms/${room.room_id}`, guest.access)).body
    expect(after).toMatchObject({ owner_id: guest.userId, is_closed: false })
    expect(after.players.map((player: { user_id: string }) => player.user_id)).toEqual([guest.userId, other.userId])
    expect((await t.client.get(`/rooms/${room.room_id}`, owner.access)).status).toBe(404)

    // The new owner now holds the owner's powers.
    expect((await t.client.post(`/rooms/${room.room_id}/invite`, { user_name: 'room_stranger', player_role: 'x' }, guest.access)).status).toBe(201)
    await t.client.delete(`/rooms/${room.room_id}/members/me`, guest.access)
    await t.client.delete(`/rooms/${room.room_id}/members/me`, other.access)
    const empty = (await t.client.get(`/rooms/${room.room_id}`, admin.access)).body
    expect(empty).toMatchObject({ is_closed: true, players: [] })
    expect((await t.client.delete(`/rooms/${room.room_id}/members/me`, other.access)).status).toBe(404)
    // Emptied is closed: its pending invitations are withdrawn, as a close withdraws them.
    const received = (await t.client.get('/invites/my', stranger.access)).body.invitations
    expect(received.filter((invitation: { room_id: string }) => invitation.room_id === room.room_id)).toEqual([])
    expect((await t.client.get(`/rooms/${room.room_id}`, stranger.access)).status).toBe(404)
  })

  test('closing: owner or admin only; closing twice is harmless; players stay listed', async () => {
    const room = await rooms.createRoom(owner)
    await rooms.seat(owner, room.room_id, guest)
    expect(refusal(await t.client.post(`/rooms/${room.room_id}/close`, undefined, guest.access))).toMatchObject({ status: 403, reason: 'not_room_manager' })
    expect((await t.client.post(`/rooms/${room.room_id}/close`, undefined, stranger.access)).status).toBe(404)
    const closed = await t.client.post(`/rooms/${room.room_id}/close`, undefined, admin.access)
    expect(closed.status).toBe(200)
    expect(closed.body).toMatchObject({ is_closed: true, players: [{ user_id: owner.userId }, { user_id: guest.userId }] })
    expect((await t.client.post(`/rooms/${room.room_id}/close`, undefined, owner.access)).body.is_closed).toBe(true)
  })
})

describe(`room lists on ${STORE}`, () => {
  test('GET /rooms (admins) filters by is_closed and is_ready, pages, counts; GET and POST /rooms/my list your rooms', async () => {
    const l = await createTestApp()
    const api = lobby(l.client)
    const root = await l.client.loginAdmin()
    const host = await l.client.register('list_host')
    const player = await l.client.register('list_player')
    const open = await api.createRoom(host, { room_name: 'open', max_players: 4 })
    const ready = await api.createRoom(host, { room_name: 'ready', max_players: 2 })
    await api.seat(host, ready.room_id, player)
    const closed = await api.createRoom(player, { room_name: 'closed' })
    await l.client.post(`/rooms/${closed.room_id}/close`, undefined, player.access)

    const names = async (path: string, session = root) => (await l.client.get(path, session.access)).body.rooms.map((room: { room_name: string }) => room.room_name)
    expect(await names('/rooms')).toEqual(['closed', 'ready', 'open'])
    expect(await names('/rooms?is_closed=true')).toEqual(['closed'])
    expect(await names('/rooms?is_ready=1')).toEqual(['ready'])
    expect(await names('/rooms?is_ready=false&is_closed=false')).toEqual(['open'])
    const page = await l.client.get('/rooms?limit=1&offset=1', root.access)
    expect(page.body).toMatchObject({ success: true, total_count: 3, rooms: [{ room_name: 'ready' }] })
    expect((await l.client.get('/rooms', host.access)).status).toBe(403)
    expect((await l.client.get('/rooms?limit=500', root.access)).status).toBe(422)

    expect(await names('/rooms/my', player)).toEqual(['closed', 'ready'])
    expect(await names('/rooms/my?is_closed=false', player)).toEqual(['ready'])
    const all = await l.client.post('/rooms/my', undefined, host.access)
    expect(all.body).toMatchObject({ total_count: 2, rooms: [{ room_name: 'ready' }, { room_id: open.room_id }] })
  })
})

describe(`deleting a user on ${STORE}`, () => {
  test('their seats go, their rooms pass on or close, their pending invitations vanish; erased, nothing is left pointing at them', async () => {
    const doomed = await t.client.register('doomed_owner')
    const shared = await rooms.createRoom(doomed)
    await rooms.seat(doomed, shared.room_id, guest)
    const alone = await rooms.createRoom(doomed)
    const invited = await rooms.invite(doomed, shared.room_id, other)
    const elsewhere = await rooms.createRoom(owner)
    await rooms.seat(owner, elsewhere.room_id, doomed)
    const toDoomed = await rooms.invite(owner, (await rooms.createRoom(owner)).room_id, doomed)

    expect((await t.client.delete(`/users/${doomed.userId}`, admin.access)).status).toBe(200)
    expect((await t.client.get(`/rooms/${shared.room_id}`, guest.access)).body).toMatchObject({ owner_id: guest.userId, is_closed: false })
    expect((await t.client.get(`/rooms/${alone.room_id}`, admin.access)).body).toMatchObject({ is_closed: true, players: [] })
    expect(await rooms.players(elsewhere.room_id, owner)).toEqual([owner.userId])
    for (const invitation of [invited, toDoomed]) expect((await t.client.delete(`/invites/${invitation.invite_id}`, admin.access)).status).toBe(404)
    // Deleted, the account keeps its history (a closed room it owned); erased, nothing points at it.
    expect((await t.client.delete(`/users/${doomed.userId}?permanent=true`, admin.access)).status).toBe(200)
    const leftovers = await t.context.db.get<{ total: number }>(
      `SELECT CAST(count(*) AS INTEGER) AS total FROM (
         SELECT user_id FROM room_players WHERE user_id = $1
         UNION ALL SELECT receiver_id FROM invitations WHERE receiver_id = $1 OR inviter_id = $1
         UNION ALL SELECT owner_id FROM rooms WHERE owner_id = $1) AS refs`,
      [doomed.userId],
    )
    expect(leftovers?.total).toBe(0)
  })
})
