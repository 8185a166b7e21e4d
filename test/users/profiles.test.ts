import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { closeTestResources, createTestApp, refusal, type Session, STORE, type TestApp } from '../support/harness'
import { lobby } from '../support/lobby'

afterAll(closeTestResources)

let t: TestApp
let admin: Session
beforeAll(async () => {
  t = await createTestApp({ ACCOUNT_RATE_LIMIT: '1000' })
  admin = await t.client.loginAdmin()
})

const PROFILE = {
  display_name: 'Ира, оператор',
  firstname: 'Ирина',
  lastname: 'Морозова',
  middlename: 'Петровна',
  email: 'Irina.Morozova@Example.com',
  phone: '+79161234567',
  locale: 'ru-ru',
  time_zone: 'europe/moscow',
}
const EMPTY = { display_name: null, firstname: null, lastname: null, middlename: null, email: null, phone: null, locale: null, time_zone: null }

describe(`profiles on ${STORE}`, () => {
  test('a new account has every profile field, empty; the user fills theirs, and the locale and time zone come back canonical', async () => {
    const user = await t.client.register('profile_owner')
    expect((await t.client.get('/users/me', user.access)).body).toMatchObject(EMPTY)
    const filled = await t.client.put('/users/me', PROFILE, user.access)
    const canonical = { ...PROFILE, email: 'Irina.Morozova@Example.com', locale: 'ru-RU', time_zone: 'Europe/Moscow' }
    expect([filled.status, filled.body]).toEqual([200, expect.objectContaining(canonical)])
    expect((await t.client.get('/users/me', user.access)).body).toMatchObject(canonical)
    expect((await t.client.get('/auth/me', user.access)).body).toMatchObject(canonical)
    // Sending what is there already, in another spelling, changes nothing.
    const again = await t.client.put('/users/me', { locale: 'RU-ru', time_zone: 'Europe/Moscow' }, user.access)
    expect(again.body.updated_at).toBe(filled.body.updated_at)
    // null clears one field and leaves the others.
    const cleared = await t.client.put('/users/me', { phone: null, middlename: null }, user.access)
    expect(cleared.body).toMatchObject({ ...canonical, phone: null, middlename: null })
  })

  test('bad values are 422 naming the field, and change nothing', async () => {
    const user = await t.client.register('profile_strict')
    await t.client.put('/users/me', { display_name: 'Before' }, user.access)
    const cases: [Record<string, unknown>, string][] = [
      [{ email: 'not-an-email' }, '/email'],
      [{ email: `${'a'.repeat(250)}@x.io` }, '/email'],
      [{ phone: '89161234567' }, '/phone'],
      [{ phone: '+0123456' }, '/phone'],
      [{ phone: 79161234567 }, '/phone'],
      [{ phone: '+7916123456789012' }, '/phone'],
      [{ locale: 'xx-YY' }, '/locale'],
      [{ locale: 'en-QQ' }, '/locale'],
      [{ locale: 'i-klingon-!' }, '/locale'],
      [{ time_zone: 'Mars/Olympus' }, '/time_zone'],
      // Offsets, which Intl takes as zones and the IANA database does not have.
      [{ time_zone: '+03' }, '/time_zone'],
      [{ time_zone: '-0530' }, '/time_zone'],
      [{ display_name: '\u200b\u200b' }, '/display_name'],
      [{ display_name: '' }, '/display_name'],
      [{ firstname: 'x'.repeat(65) }, '/firstname'],
      [{ lastname: 'bad\u0007bell' }, '/lastname'],
      [{ avatar_url: 'https://evil.example/a.png' }, '/avatar_url'],
      [{ display_name: 'Fine', phone: 'nope' }, '/phone'],
    ]
    for (const [body, field] of cases) {
      const reply = await t.client.put('/users/me', body, user.access)
      expect({ body, status: reply.status, fields: reply.body.details?.map((detail: { field: string }) => detail.field) }).toEqual({
        body,
        status: 422,
        fields: expect.arrayContaining([field]),
      })
    }
    expect((await t.client.get('/users/me', user.access)).body).toMatchObject({ display_name: 'Before', phone: null, email: null })
    // The 422 says what the field must be, never the value sent.
    expect((await t.client.put('/users/me', { email: 'x@@y' }, user.access)).body.details).toEqual([
      { field: '/email', message: 'must be an email address, such as alice@example.com (at most 254 characters), or null' },
    ])
  })

  test('an email address is one account’s, ignoring case: 409 email_taken, also when forty take one at once', async () => {
    const first = await t.client.register('email_first')
    const second = await t.client.register('email_second')
    expect((await t.client.put('/users/me', { email: 'shared@example.com' }, first.access)).status).toBe(200)
    const taken = await t.client.put('/users/me', { email: 'SHARED@example.COM' }, second.access)
    expect(refusal(taken)).toEqual({ status: 409, error: 'conflict', reason: 'email_taken' })
    expect((await t.client.post('/users', { username: 'email_third', password: 'password-123', email: 'Shared@Example.com' }, admin.access)).body.reason).toBe('email_taken')
    const registered = await t.client.post('/auth/registrate', { username: 'email_fourth', password: 'password-123', email: 'shared@EXAMPLE.com' })
    expect(refusal(registered)).toEqual({ status: 409, error: 'conflict', reason: 'email_taken' })
    // Freed, it can be taken again.
    expect((await t.client.put('/users/me', { email: null }, first.access)).status).toBe(200)
    expect((await t.client.put('/users/me', { email: 'shared@example.com' }, second.access)).status).toBe(200)

    const racers = await Promise.all(Array.from({ length: 40 }, (_, i) => t.client.register(`email_racer_${i}`)))
    const replies = await Promise.all(racers.map((racer, i) => t.client.put('/users/me', { email: i % 2 ? 'race@example.com' : 'RACE@example.com' }, racer.access)))
    expect(replies.filter((reply) => reply.status === 200)).toHaveLength(1)
    expect(replies.filter((reply) => reply.status !== 200).map((reply) => refusal(reply).reason)).toEqual(Array(39).fill('email_taken'))
  })

  test('registration and an admin may set a profile; registration still cannot set a role', async () => {
    const registered = await t.client.post('/auth/registrate', { username: 'profile_new', password: 'password-123', display_name: 'Newcomer', time_zone: 'Asia/Tokyo' })
    expect([registered.status, registered.body.user]).toEqual([201, expect.objectContaining({ display_name: 'Newcomer', time_zone: 'Asia/Tokyo', user_role: 'user' })])
    const smuggled = await t.client.post('/auth/registrate', { username: 'profile_sneak', password: 'password-123', display_name: 'x', user_role: 'admin' })
    expect(smuggled.status).toBe(422)
    // Login takes a name and a password, nothing more.
    expect((await t.client.post('/auth/login', { username: 'profile_new', password: 'password-123', display_name: 'x' })).status).toBe(422)

    const created = await t.client.post('/users', { username: 'profile_made', password: 'password-123', firstname: 'Made', locale: 'de-CH' }, admin.access)
    expect(created.body).toMatchObject({ firstname: 'Made', locale: 'de-CH', email: null })
    const changed = await t.client.put(`/users/${created.body.user_id}`, { lastname: 'By Admin', email: 'made@example.com' }, admin.access)
    expect(changed.body).toMatchObject({ firstname: 'Made', lastname: 'By Admin', email: 'made@example.com' })
  })

  test('the admin’s search matches the username, the email, the display name and the names, ignoring case in any script', async () => {
    const user = await t.client.register('searched_person')
    await t.client.put('/users/me', { email: 'Unique.Finder@Example.org', display_name: 'Ёжик в тумане', lastname: 'Ægir' }, user.access)
    for (const search of ['SEARCHED_PERS', 'unique.finder@', 'ЁЖИК', 'в туман', 'æGIR']) {
      const found = await t.client.get(`/users?search=${encodeURIComponent(search)}`, admin.access)
      expect({ search, users: found.body.users.map((u: { username: string }) => u.username), total: found.body.total_count }).toEqual({
        search,
        users: ['searched_person'],
        total: 1,
      })
    }
    // A percent sign or an underscore is a character, not a wildcard.
    expect((await t.client.get(`/users?search=${encodeURIComponent('%')}`, admin.access)).body.total_count).toBe(0)
  })

  test('other players see a player’s display name, never their email, phone or names', async () => {
    const rooms = lobby(t.client)
    const owner = await t.client.register('seen_owner')
    const guest = await t.client.register('seen_guest')
    expect((await t.client.put('/users/me', { ...PROFILE, email: 'seen.guest@example.com' }, guest.access)).status).toBe(200)
    const room = await rooms.createRoom(owner)
    await rooms.seat(owner, room.room_id, guest)
    const players = (await t.client.get(`/rooms/${room.room_id}`, owner.access)).body.players
    const seen = players.find((player: { user_id: string }) => player.user_id === guest.userId)
    expect(Object.keys(seen).sort()).toEqual(['avatar_url', 'display_name', 'game_role', 'joined_at', 'user_id', 'username'])
    expect(seen.display_name).toBe(PROFILE.display_name)

    expect((await t.client.post(`/dms/${guest.userId}/messages`, { body: 'hello' }, owner.access)).status).toBe(201)
    const [conversation] = (await t.client.get('/dms', owner.access)).body.conversations
    expect(conversation.peer).toEqual({ user_id: guest.userId, username: 'seen_guest', display_name: PROFILE.display_name, avatar_url: null })
    // Nothing private in any answer the owner gets about the guest.
    for (const path of [`/rooms/${room.room_id}`, '/rooms/my', '/dms', `/dms/${guest.userId}/messages`])
      expect({ path, leaked: JSON.stringify((await t.client.get(path, owner.access)).body).match(/Морозова|Ирина|Петровна|79161234567|seen\.guest@/g) }).toEqual({ path, leaked: null })
  })
})
