import { afterAll, describe, expect, test } from 'bun:test'
import jsQR from 'jsqr'
import type { Page } from 'playwright-core'
import { type Browsing, browse, browserAvailable } from '../support/browser'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Client, closeTestResources, freshDatabaseUrl, onlyOn, STORE, startTestServer, TEST_DATABASE_URL, TEST_ENV } from '../support/harness'
import { freePort, startService } from '../support/process'
import { gatewayProxy, nginxAvailable, startNginx } from '../support/nginx'
import { picture } from '../support/pictures'
import { fakeYandex } from '../support/yandex'

// The lobby page as two players meet it, in two Chromium profiles: one creates a room and invites,
// the other accepts, both chat and see each other join and type, live. Screenshots in test-output/lobby-*/.

const open: Browsing[] = []
// A dozen Chromium profiles take longer to close than a hook's default 5 s on a busy machine.
afterAll(async () => {
  await Promise.all(open.map((browsing) => browsing.close()))
  await closeTestResources()
}, 30_000)

async function logIn(baseUrl: string, folder: string, username: string, password: string) {
  const browsing = await browse(baseUrl, folder)
  open.push(browsing)
  const { page } = browsing
  await page.goto(`${baseUrl}/lobby`)
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Log in', exact: true }).click()
  await page.getByText(`Logged in as ${username}`).waitFor()
  return browsing
}

/**
 * `<prefix>_alice` owns a room `<prefix>_bob` plays in; both logged in in Chromium, the room open
 * and connected. Bob's page comes from `bobBaseUrl` when given (another instance, a proxy).
 */
async function twoPlayersInARoom(service: { baseUrl: string; client: Client }, prefix: string, roomName: string, bobBaseUrl = service.baseUrl) {
  const { client, baseUrl } = service
  const aliceSession = await client.register(`${prefix}_alice`, 'lobby-password-1')
  const bobSession = await client.register(`${prefix}_bob`, 'lobby-password-2')
  const room = (await client.post('/rooms', { room_name: roomName }, aliceSession.access)).body
  const invitation = (await client.post(`/rooms/${room.room_id}/invite`, { user_name: bobSession.username, player_role: 'operator' }, aliceSession.access)).body
  expect((await client.post(`/rooms/${room.room_id}/join`, { ct: invitation.ct }, bobSession.access)).status).toBe(200)
  const alice = await logIn(baseUrl, `lobby-${prefix}-alice`, aliceSession.username, 'lobby-password-1')
  const bob = await logIn(bobBaseUrl, `lobby-${prefix}-bob`, bobSession.username, 'lobby-password-2')
  for (const { page } of [alice, bob]) {
    await page.getByRole('button', { name: `Open ${roomName}` }).click()
    await page.locator('#room-title', { hasText: roomName }).waitFor()
    await page.locator('#connection.connected').waitFor()
  }
  // Who wrote what, as chatLines and historyLines name them.
  const authors = { [aliceSession.userId]: aliceSession.username, [bobSession.userId]: bobSession.username }
  return { aliceSession, bobSession, room, authors, alice, bob: Object.assign(bob, { userId: bobSession.userId }) }
}

/** Writes `text` in the room's message field and sends it with Enter, as a player at the keyboard does. */
async function write(page: Page, text: string) {
  await page.getByLabel('Message', { exact: true }).fill(text)
  await page.keyboard.press('Enter')
}

/** Waits until `check` holds, for 5 s at most. */
async function eventually(check: () => Promise<boolean>) {
  const deadline = Date.now() + 5000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('waited 5 s in vain')
    await Bun.sleep(50)
  }
}

/** A room's history over REST, oldest first, as `author: body` like chatLines; a deleted message is `(deleted)`. */
async function historyLines(client: Client, roomId: string, reader: { access: string }, authors: Record<string, string>) {
  const { messages } = (await client.get(`/rooms/${roomId}/messages`, reader.access)).body
  return (messages as Array<{ author_id: string; body: string; deleted_at: string | null }>)
    .reverse()
    .map((message) => `${authors[message.author_id]}: ${message.deleted_at ? '(deleted)' : message.body}`)
}

/** Each message of the chat as `author: body`, in order (notices, times and buttons left out). */
const chatLines = (page: Page, list = '#messages') =>
  page.locator(`${list} li:not(.system)`).evaluateAll((items) => items.map((li) => `${li.querySelector('.author')?.textContent} ${li.querySelector('.body')?.textContent}`))

/** The little of a canvas the QR's scan uses (the tests' types know no DOM). */
type Canvas = {
  width: number
  height: number
  getContext(kind: '2d'): {
    fillStyle: string
    fillRect(x: number, y: number, width: number, height: number): void
    drawImage(image: unknown, x: number, y: number, width: number, height: number): void
    getImageData(x: number, y: number, width: number, height: number): { data: ArrayLike<number> }
  } | null
}

describe.if(browserAvailable)(`the lobby page in Chromium on ${STORE}`, () => {
  test('two players in two browsers: one invites, the other accepts; both see the join, the typing and each other’s messages', async () => {
    // Stores that outlive the server: the history (and the avatars) must be there after a restart.
    const databaseUrl = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'sgw-lobby-')), 'lobby.sqlite')}`
    const stores = { DATABASE_URL: databaseUrl, AVATAR_DIR: mkdtempSync(join(tmpdir(), 'sgw-lobby-avatars-')) }
    const server = await startTestServer(stores)
    await server.client.register('lobby_alice', 'lobby-password-1')
    const bobSession = await server.client.register('lobby_bob', 'lobby-password-2')
    const form = new FormData()
    form.append('avatar_file', new File([await picture('png', 200, 200, 0.6)], 'bob.png'))
    const uploaded = await fetch(`${server.baseUrl}/users/me/avatar`, { method: 'PUT', body: form, headers: { authorization: `Bearer ${bobSession.access}` } })
    expect(uploaded.status).toBe(200)
    const alice = await logIn(server.baseUrl, 'lobby-alice', 'lobby_alice', 'lobby-password-1')
    const bob = await logIn(server.baseUrl, 'lobby-bob', 'lobby_bob', 'lobby-password-2')
    // The footer leads to the documents of what the page is built on.
    for (const name of ['the REST API', 'the realtime protocol']) {
      const href = await alice.page.getByRole('link', { name, exact: true }).getAttribute('href')
      expect({ name, status: (await fetch(new URL(href ?? '', server.baseUrl))).status }).toEqual({ name, status: 200 })
    }

    await alice.page.getByLabel('New room').fill('Control room')
    await alice.page.getByRole('button', { name: 'Create' }).click()
    await alice.page.locator('#room-title', { hasText: 'Control room' }).waitFor()
    await alice.page.getByLabel('Invite').fill('lobby_bob')
    await alice.page.getByRole('button', { name: 'Invite', exact: true }).click()

    // Bob's invitation arrives live, without a reload.
    await bob.page.getByRole('button', { name: 'Accept' }).click()
    await bob.page.locator('#room-title', { hasText: 'Control room' }).waitFor()
    await alice.page.locator('#messages li.system', { hasText: 'lobby_bob joined' }).waitFor()
    await alice.page.locator('#players li.online', { hasText: 'lobby_bob' }).waitFor()
    // Bob's avatar beside his name, loaded by the browser from its URL under the page's policy.
    const avatar = alice.page.locator('#players li', { hasText: 'lobby_bob' }).locator('img.avatar')
    expect(await avatar.evaluate((img: { decode(): Promise<void>; naturalWidth: number }) => img.decode().then(() => img.naturalWidth))).toBe(200)

    await bob.page.getByLabel('Message', { exact: true }).pressSequentially('Hello, Alice')
    await alice.page.locator('#typing', { hasText: 'lobby_bob is typing' }).waitFor()
    await alice.screenshot('bob-typing')
    await bob.page.getByRole('button', { name: 'Send', exact: true }).click()
    await alice.page.locator('#messages li', { hasText: 'Hello, Alice' }).waitFor()
    await alice.page.getByLabel('Message', { exact: true }).fill('<b>Hi Bob</b>, start the pumps')
    await alice.page.getByRole('button', { name: 'Send', exact: true }).click()
    await bob.page.locator('#messages li', { hasText: 'start the pumps' }).waitFor()
    await alice.screenshot('alice')
    await bob.screenshot('bob')

    expect(await chatLines(bob.page)).toEqual(['lobby_bob: Hello, Alice', 'lobby_alice: <b>Hi Bob</b>, start the pumps'])
    // Text stays text: no element was made from the message.
    expect(await bob.page.locator('#messages b').count()).toBe(0)
    expect(await alice.page.locator('#typing').textContent()).toBe('')
    for (const browsing of [alice, bob]) {
      expect(browsing.errors).toEqual([])
      expect(browsing.blocked).toEqual([])
    }
    // After the service restarts, the history is there.
    await Promise.all([alice.close(), bob.close()])
    await server.app.stop(true)
    const restarted = await startTestServer(stores)
    const again = await logIn(restarted.baseUrl, 'lobby-bob-after-restart', 'lobby_bob', 'lobby-password-2')
    await again.page.getByRole('button', { name: 'Open Control room' }).click()
    await again.page.locator('#messages li', { hasText: 'start the pumps' }).waitFor()
    expect(await chatLines(again.page)).toEqual(['lobby_bob: Hello, Alice', 'lobby_alice: <b>Hi Bob</b>, start the pumps'])
    await again.screenshot('history-after-restart')
    expect(again.errors).toEqual([])
    expect(again.blocked).toEqual([])
  }, 60_000)

  test('a burst over the rate limit is shown refused and goes once on Retry; short-lived tokens renew unseen; a kick closes the room; a session ended elsewhere returns to the login', async () => {
    // Three messages per 4 s, access tokens of 10 s.
    const server = await startTestServer({ MESSAGE_RATE_LIMIT: '3', MESSAGE_RATE_WINDOW: '4', ACCESS_TOKEN_TTL: '10' })
    const { room, alice, bob } = await twoPlayersInARoom(server, 'burst', 'Pump station')
    // Six quick messages: three go, three are refused, shown so, each with a Retry.
    for (let i = 1; i <= 6; i++) {
      await alice.page.getByLabel('Message', { exact: true }).fill(`Reading ${i}`)
      await alice.page.getByRole('button', { name: 'Send', exact: true }).click()
    }
    const refused = alice.page.locator('#messages li.failed')
    await eventually(async () => (await refused.count()) === 3)
    expect(await refused.first().textContent()).toContain('not sent')
    await alice.screenshot('burst-refused')
    // Past the window, and past the access token's lifetime: the retries go, each once.
    await Bun.sleep(11_000)
    for (let i = 0; i < 3; i++) await refused.first().getByRole('button', { name: 'Retry' }).click()
    await eventually(async () => (await refused.count()) === 0)
    await bob.page.locator('#messages li', { hasText: 'Reading 6' }).waitFor()
    // The test's own token has expired by now, as the pages' did.
    const reader = await server.client.login('burst_alice', 'lobby-password-1')
    const history = (await server.client.get(`/rooms/${room.room_id}/messages`, reader.access)).body.messages
      .reverse()
      .map((message: { body: string }) => `burst_alice: ${message.body}`)
    expect(history.toSorted()).toEqual([1, 2, 3, 4, 5, 6].map((i) => `burst_alice: Reading ${i}`))
    expect(await chatLines(alice.page)).toEqual(history)
    expect(await chatLines(bob.page)).toEqual(history)
    expect(await alice.page.locator('#login').isHidden()).toBe(true)

    // Alice removes Bob: his room closes at once, with a notice.
    await alice.page.getByRole('button', { name: 'Remove burst_bob' }).click()
    // Told by the user stream (removed) or the room's (access lost), whichever comes first.
    await bob.page.locator('#notice', { hasText: /(removed from|no longer have access to) Pump station/ }).waitFor()
    expect(await bob.page.locator('#room').isHidden()).toBe(true)
    await bob.screenshot('removed')

    // Alice changes her password elsewhere: every other session ends, this page returns to the login.
    expect((await server.client.post('/auth/change-password', { current_password: 'lobby-password-1', new_password: 'lobby-password-9' }, reader.access)).status).toBe(200)
    await alice.page.locator('#notice', { hasText: 'session has ended' }).waitFor()
    expect(await alice.page.locator('#login').isVisible()).toBe(true)
    await alice.screenshot('session-ended')
    for (const browsing of [alice, bob]) expect(browsing.blocked).toEqual([])
  }, 60_000)

  test('direct messages: a new one is announced with an unread count, read when opened, and the sender sees it seen; both screens equal the history; an inviter is told of a decline', async () => {
    const server = await startTestServer()
    const { aliceSession, alice, bob } = await twoPlayersInARoom(server, 'dm', 'Control desk')
    await bob.page.getByRole('button', { name: 'Message dm_alice' }).click()
    await bob.page.locator('#dm-title', { hasText: 'dm_alice' }).waitFor()
    await bob.page.getByRole('textbox', { name: 'Direct message' }).fill('Can you check valve 3?')
    await bob.page.getByRole('button', { name: 'Send directly' }).click()
    await alice.page.locator('#notice', { hasText: 'New message from dm_bob' }).waitFor()
    await alice.page.locator('#dms li', { hasText: 'dm_bob (1 new)' }).waitFor()
    await alice.screenshot('dm-announced')
    await alice.page.getByRole('button', { name: 'Open dm_bob' }).click()
    await alice.page.locator('#dm-messages li', { hasText: 'Can you check valve 3?' }).waitFor()
    await alice.page.locator('#dms li', { hasText: /^dm_bob Open/ }).waitFor()
    await bob.page.locator('#dm-receipt', { hasText: 'Seen by dm_alice' }).waitFor()
    await alice.page.getByRole('textbox', { name: 'Direct message' }).fill('Checked: it holds')
    await alice.page.getByRole('button', { name: 'Send directly' }).click()
    await bob.page.locator('#dm-messages li', { hasText: 'Checked: it holds' }).waitFor()
    await bob.screenshot('dm-conversation')
    const history = (await server.client.get(`/dms/${bob.userId}/messages`, aliceSession.access)).body.messages
      .reverse()
      .map((message: { author_id: string; body: string }) => `${message.author_id === aliceSession.userId ? 'dm_alice' : 'dm_bob'}: ${message.body}`)
    expect(history).toEqual(['dm_bob: Can you check valve 3?', 'dm_alice: Checked: it holds'])
    for (const { page } of [alice, bob]) expect(await chatLines(page, '#dm-messages')).toEqual(history)

    // Alice invites a third player from the page, who declines: Alice is told, by name.
    const carol = await server.client.register('dm_carol', 'lobby-password-3')
    await alice.page.getByLabel('Invite').fill('dm_carol')
    await alice.page.getByRole('button', { name: 'Invite', exact: true }).click()
    // The form empties once the invitation is made.
    await eventually(async () => (await alice.page.getByLabel('Invite').inputValue()) === '')
    const [invitation] = (await server.client.get('/invites/my', carol.access)).body.invitations
    expect((await server.client.post(`/invites/${invitation.invite_id}/decline`, undefined, carol.access)).status).toBe(200)
    await alice.page.locator('#notice', { hasText: 'dm_carol declined your invitation to Control desk' }).waitFor()
    for (const browsing of [alice, bob]) expect([browsing.errors, browsing.blocked]).toEqual([[], []])
  }, 60_000)

  test('a phone logs a desktop in with its QR code: the phone shows where it comes from and its words, a denial is told, an approval puts the desktop in the lobby, and the phone hears of the new device', async () => {
    const server = await startTestServer()
    await server.client.register('qr_walker', 'lobby-password-1')
    const phone = await logIn(server.baseUrl, 'lobby-qr-phone', 'qr_walker', 'lobby-password-1')
    const desktop = await browse(server.baseUrl, 'lobby-qr-desktop')
    open.push(desktop)
    await desktop.page.goto(`${server.baseUrl}/lobby`)

    /** The desktop's QR, its words, and the phone's camera opening the link it carries. */
    const scan = async () => {
      await desktop.page.getByRole('button', { name: 'Log in with your phone' }).click()
      const image = desktop.page.locator('#qr-image')
      await image.waitFor()
      // The service's SVG as the page draws it, read back as pixels and decoded as a phone's camera would.
      const drawn = await image.evaluate(async (picture: { decode(): Promise<void> }) => {
        const { document } = globalThis as unknown as { document: { createElement(tag: 'canvas'): Canvas } }
        await picture.decode()
        const side = 400
        const canvas = document.createElement('canvas')
        canvas.width = side
        canvas.height = side
        const context = canvas.getContext('2d')!
        context.fillStyle = '#fff'
        context.fillRect(0, 0, side, side)
        context.drawImage(picture, 0, 0, side, side)
        return { side, pixels: Array.from(context.getImageData(0, 0, side, side).data) }
      })
      const scanned = jsQR(Uint8ClampedArray.from(drawn.pixels), drawn.side, drawn.side)
      const code = (await desktop.page.locator('#qr-code').textContent()) ?? ''
      expect(scanned?.data).toBe(`${server.baseUrl}/lobby#qr-login=${code}`)
      const words = (await desktop.page.locator('#qr-words').textContent()) ?? ''
      expect(words.split(' ')).toHaveLength(4)
      await phone.page.goto(scanned!.data)
      const details = phone.page.locator('#approve-details')
      await details.getByText(words, { exact: true }).waitFor()
      // The code leaves the address bar at once; the phone is shown the desktop's browser and address.
      expect(phone.page.url()).not.toContain(code)
      expect(await details.textContent()).toContain('Chrome')
      expect(await details.textContent()).toContain('127.0.0.1')
    }

    await scan()
    await phone.page.getByRole('button', { name: 'Deny' }).click()
    await desktop.page.getByText('Denied on the phone.').waitFor()

    await scan()
    await desktop.screenshot('qr')
    await phone.screenshot('approve')
    await phone.page.getByRole('button', { name: 'Approve' }).click()
    await desktop.page.getByText('Logged in as qr_walker').waitFor()
    await phone.page.locator('#notice', { hasText: 'A new device logged in as you' }).waitFor()
    await desktop.screenshot('logged-in')
    expect([phone.errors, phone.blocked, desktop.blocked]).toEqual([[], [], []])
    // The desktop's waits answered as RFC 8628 says (400 access_denied, authorization_pending), which Chromium logs; nothing else.
    expect(desktop.errors.filter((error) => !error.includes('status of 400'))).toEqual([])
  }, 60_000)

  test('signing up with Yandex ID from the lobby: its button, the round trip, the code gone from the address bar; a sign-in link someone else started is refused', async () => {
    const yandex = await fakeYandex({ id: 'lobby-client', secret: 'lobby-secret' })
    const server = await startTestServer({ OAUTH_PROVIDERS: JSON.stringify([yandex.provider('https://lobby.test/lobby')]) })
    yandex.state.backTo = `${server.baseUrl}/lobby`
    yandex.state.account = { ...yandex.state.account, login: 'lobby.ivan' }
    const newcomer = await browse(server.baseUrl, 'lobby-yandex', [yandex.origin])
    open.push(newcomer)
    try {
      await newcomer.page.goto(`${server.baseUrl}/lobby`)
      await newcomer.page.getByRole('button', { name: 'Log in with Yandex ID' }).click()
      await newcomer.page.getByText('Logged in as lobby.ivan').waitFor()
      expect(newcomer.page.url()).toBe(`${server.baseUrl}/lobby`)
      await newcomer.screenshot('signed-up')
      expect([newcomer.errors, newcomer.blocked]).toEqual([[], []])

      // A sign-in finished in a browser that did not start it (a link someone sent) is refused there.
      const stranger = await browse(server.baseUrl, 'lobby-yandex-stranger', [yandex.origin])
      open.push(stranger)
      const started = await server.client.post('/auth/oauth/yandex/start')
      const back = await yandex.visit(started.body.authorize_url)
      await stranger.page.goto(`${server.baseUrl}/lobby?code=${back.code}&state=${back.state}`)
      await stranger.page.locator('#notice', { hasText: 'That sign-in was not started here' }).waitFor()
      expect(await stranger.page.locator('#login').isVisible()).toBe(true)
      expect(stranger.page.url()).toBe(`${server.baseUrl}/lobby`)
    } finally {
      yandex.stop()
    }
  }, 60_000)

  test('a reload keeps the session, the open room and where the player was reading; a new tab goes on with the session', async () => {
    const server = await startTestServer()
    const { aliceSession, room, alice } = await twoPlayersInARoom(server, 'reload', 'Boiler room')
    for (let i = 1; i <= 40; i++) await server.client.post(`/rooms/${room.room_id}/messages`, { body: `Log line ${i}` }, aliceSession.access)
    await alice.page.locator('#messages li', { hasText: 'Log line 40' }).waitFor()
    const messages = alice.page.locator('#messages')
    await messages.evaluate((list) => (list.scrollTop = 0))
    await alice.page.reload()
    await alice.page.locator('#room-title', { hasText: 'Boiler room' }).waitFor()
    await alice.page.locator('#messages li', { hasText: 'Log line 40' }).waitFor()
    expect(await messages.evaluate((list) => [list.scrollTop, list.scrollHeight > list.clientHeight])).toEqual([0, true])
    expect(await alice.page.locator('#login').isHidden()).toBe(true)
    const tab = await alice.context.newPage()
    await tab.goto(`${server.baseUrl}/lobby`)
    await tab.getByText('Logged in as reload_alice').waitFor()
    await tab.close()
  }, 60_000)

  test('the service killed and restarted mid-conversation: both pages say so, a message sent meanwhile is refused and goes once on Retry, and both screens hold the history exactly', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'sgw-lobby-restart-'))
    const databaseUrl = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(directory, 'lobby.sqlite')}`
    const env = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: databaseUrl, AVATAR_DIR: join(directory, 'avatars') }
    const port = await freePort()
    let service = await startService(env, port)
    try {
      const { aliceSession, room, alice, bob } = await twoPlayersInARoom(service, 'down', 'Turbine hall')
      await alice.page.getByLabel('Message', { exact: true }).fill('Pressure is rising')
      await alice.page.getByRole('button', { name: 'Send', exact: true }).click()
      await bob.page.locator('#messages li', { hasText: 'Pressure is rising' }).waitFor()

      service.child.kill('SIGKILL')
      await service.child.exited
      for (const { page } of [alice, bob]) await page.locator('#connection.reconnecting').waitFor()
      await bob.page.getByLabel('Message', { exact: true }).fill('Opening the valve')
      await bob.page.getByRole('button', { name: 'Send', exact: true }).click()
      const refused = bob.page.locator('#messages li.failed', { hasText: 'Opening the valve' })
      await refused.waitFor()
      expect(await refused.textContent()).toContain('not sent')
      await bob.screenshot('send-refused-while-down')

      service = await startService(env, port)
      // Written while the pages reconnect: they must get it from the resume, not from a reload.
      expect((await service.client.post(`/rooms/${room.room_id}/messages`, { body: 'Back online' }, aliceSession.access)).status).toBe(201)
      for (const { page } of [alice, bob]) await page.locator('#connection.connected').waitFor()
      await refused.getByRole('button', { name: 'Retry' }).click()
      await alice.page.locator('#messages li', { hasText: 'Opening the valve' }).waitFor()
      await bob.page.locator('#messages li.failed').waitFor({ state: 'detached' })
      await Bun.sleep(500)
      await alice.screenshot('after-restart')
      await bob.screenshot('after-restart')

      const history = (await service.client.get(`/rooms/${room.room_id}/messages`, aliceSession.access)).body.messages
        .reverse()
        .map((message: { author_id: string; body: string }) => `${message.author_id === aliceSession.userId ? 'down_alice' : 'down_bob'}: ${message.body}`)
      expect(history).toEqual(['down_alice: Pressure is rising', 'down_alice: Back online', 'down_bob: Opening the valve'])
      expect(await chatLines(alice.page)).toEqual(history)
      expect(await chatLines(bob.page)).toEqual(history)
      for (const browsing of [alice, bob]) expect(browsing.blocked).toEqual([])
    } finally {
      service.child.kill('SIGKILL')
      await service.child.exited
    }
  }, 60_000)

  test('a message in a room not open is announced and counted; edits in place from the keyboard and deletions by author and owner reach both screens; every control has a name; a phone-sized screen needs no sideways scrolling', async () => {
    const server = await startTestServer()
    const { aliceSession, room, authors, alice, bob } = await twoPlayersInARoom(server, 'edit', 'Cooling loop')
    // A second room of both; Bob goes back to the first.
    const other = (await server.client.post('/rooms', { room_name: 'Night shift' }, aliceSession.access)).body
    await server.client.post(`/rooms/${other.room_id}/invite`, { user_name: 'edit_bob', player_role: 'operator' }, aliceSession.access)
    await bob.page.getByRole('button', { name: 'Accept' }).click()
    await bob.page.locator('#room-title', { hasText: 'Night shift' }).waitFor()
    await bob.page.getByRole('button', { name: 'Open Cooling loop' }).click()
    await bob.page.locator('#room-title', { hasText: 'Cooling loop' }).waitFor()
    await bob.page.locator('#connection.connected').waitFor()

    expect((await server.client.post(`/rooms/${other.room_id}/messages`, { body: 'Anyone on nights?' }, aliceSession.access)).status).toBe(201)
    expect((await server.client.post(`/rooms/${other.room_id}/messages`, { body: 'Need a hand at 2' }, aliceSession.access)).status).toBe(201)
    await bob.page.locator('#notice', { hasText: 'New message in Night shift' }).waitFor()
    await bob.page.locator('#rooms li', { hasText: /Night shift .* 2 new/ }).waitFor()
    await bob.screenshot('room-unread')
    await bob.page.getByRole('button', { name: 'Open Night shift' }).click()
    await bob.page.locator('#messages li', { hasText: 'Need a hand at 2' }).waitFor()
    expect(await bob.page.locator('#rooms li', { hasText: 'new' }).count()).toBe(0)
    await bob.page.getByRole('button', { name: 'Open Cooling loop' }).click()
    await bob.page.locator('#room-title', { hasText: 'Cooling loop' }).waitFor()
    // Back in a room whose chat was followed all along: who is online there is still known.
    await bob.page.locator('#players li.online', { hasText: 'edit_alice' }).waitFor()

    // Bob writes and edits by keyboard alone: the field has the focus once the room opens.
    await bob.page.locator('#chat-form input:focus').waitFor()
    await bob.page.keyboard.type('Valve at 40%')
    await bob.page.keyboard.press('Enter')
    await alice.page.locator('#messages li', { hasText: 'Valve at 40%' }).waitFor()
    const sent = bob.page.locator('#messages li[data-id]', { hasText: 'Valve at 40%' })
    await sent.waitFor()
    const id = await sent.getAttribute('data-id')
    const bobsLine = (page: Page) => page.locator(`#messages li[data-id="${id}"]`)
    await bobsLine(bob.page).getByRole('button', { name: 'Edit' }).click()
    expect(await bob.page.locator(':focus').getAttribute('aria-label')).toBe('Edit your message')
    await bob.page.keyboard.type('Valve at 45%')
    await bob.page.keyboard.press('Enter')
    await bobsLine(alice.page).filter({ hasText: 'Valve at 45% (edited)' }).waitFor()
    await bobsLine(bob.page).filter({ hasText: 'Valve at 45% (edited)' }).waitFor()
    // Escape leaves it as it was.
    await bobsLine(bob.page).getByRole('button', { name: 'Edit' }).click()
    await bob.page.keyboard.type('never sent')
    await bob.page.keyboard.press('Escape')
    expect(await bobsLine(bob.page).textContent()).toContain('Valve at 45%')
    // An edit the server refuses keeps the editor open with the reason.
    await bobsLine(bob.page).getByRole('button', { name: 'Edit' }).click()
    await bob.page.getByRole('textbox', { name: 'Edit your message' }).fill('x'.repeat(2001))
    await bob.page.keyboard.press('Enter')
    await bobsLine(bob.page).locator('.error', { hasText: /body/ }).waitFor()
    await bob.screenshot('edit-refused')
    await bob.page.keyboard.press('Escape')

    // Alice, the owner, may delete Bob's message; both screens show it deleted.
    await write(alice.page, 'Thanks, noted')
    await bobsLine(alice.page).getByRole('button', { name: 'Delete' }).click()
    await bob.page.locator('#messages li', { hasText: '(deleted)' }).waitFor()
    await alice.page.locator('#messages li', { hasText: '(deleted)' }).waitFor()
    const history = await historyLines(server.client, room.room_id, aliceSession, authors)
    expect(history).toEqual(['edit_bob: (deleted)', 'edit_alice: Thanks, noted'])
    for (const { page } of [alice, bob]) expect(await chatLines(page)).toEqual(history)

    // Every field and button a player can reach says what it is: Chromium's accessibility tree names each.
    for (const { page } of [alice, bob]) {
      const controls = (await page.locator('body').ariaSnapshot()).split('\n').filter((line) => /^\s*- (button|textbox)\b/.test(line))
      expect(controls.length).toBeGreaterThan(5)
      expect(controls.filter((line) => !/^\s*- (button|textbox) "[^"]+"/.test(line))).toEqual([])
    }
    // A phone: nothing wider than the screen, the send button on it.
    await bob.page.setViewportSize({ width: 390, height: 844 })
    expect(await bob.page.locator('html').evaluate((html) => html.scrollWidth)).toBeLessThanOrEqual(390)
    const send = await bob.page.getByRole('button', { name: 'Send', exact: true }).boundingBox()
    expect(send!.x + send!.width).toBeLessThanOrEqual(390)
    await bob.page.getByLabel('Message', { exact: true }).scrollIntoViewIfNeeded()
    await bob.screenshot('phone')
    // The one error either console saw: the refused edit's answer.
    expect([alice.errors, bob.errors]).toEqual([[], ['Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)']])
    for (const browsing of [alice, bob]) expect(browsing.blocked).toEqual([])
  }, 60_000)

  test.if(nginxAvailable)('the connection cut mid-conversation (the proxy in front killed, then back): the page says so, a message sent meanwhile is refused and goes once on Retry, and what was written meanwhile arrives by the resume, once', async () => {
    const server = await startTestServer()
    // Bob reaches the service through nginx; killing nginx cuts his socket as a network drop would.
    let proxy = await startNginx(gatewayProxy([server.baseUrl]))
    try {
      const { aliceSession, room, authors, alice, bob } = await twoPlayersInARoom(server, 'cut', 'Water tower', proxy.baseUrl)
      await write(alice.page, 'Tank at 80%')
      await bob.page.locator('#messages li', { hasText: 'Tank at 80%' }).waitFor()

      proxy.stop()
      await bob.page.locator('#connection.reconnecting').waitFor()
      await write(alice.page, 'Tank at 85%')
      await write(alice.page, 'Tank at 90%, opening the spill valve')
      await write(bob.page, 'Copy that')
      const refused = bob.page.locator('#messages li.failed', { hasText: 'Copy that' })
      await refused.waitFor()
      expect(await refused.textContent()).toContain('cannot be reached')
      await bob.screenshot('cut')

      proxy = await startNginx(gatewayProxy([server.baseUrl]), '/health', proxy.port)
      await bob.page.locator('#messages li', { hasText: 'opening the spill valve' }).waitFor()
      await bob.page.locator('#connection.connected').waitFor()
      await refused.getByRole('button', { name: 'Retry' }).click()
      await alice.page.locator('#messages li', { hasText: 'Copy that' }).waitFor()
      await bob.page.locator('#messages li.failed, #messages li.pending').waitFor({ state: 'detached' })
      const history = await historyLines(server.client, room.room_id, aliceSession, authors)
      expect(history).toEqual(['cut_alice: Tank at 80%', 'cut_alice: Tank at 85%', 'cut_alice: Tank at 90%, opening the spill valve', 'cut_bob: Copy that'])
      for (const { page } of [alice, bob]) expect(await chatLines(page)).toEqual(history)
      await bob.screenshot('back')
      for (const browsing of [alice, bob]) expect(browsing.blocked).toEqual([])
    } finally {
      proxy.stop()
    }
  }, 60_000)

  // Instances hear each other's events through PostgreSQL (LISTEN/NOTIFY); on SQLite one instance serves the realtime.
  test.if(nginxAvailable && onlyOn('postgres', 'the lobby page on two instances with one killed'))('two instances on one store behind nginx, the players on different ones: the instance Bob is on is killed as he sends; his page moves to the other and resumes there, and neither screen loses or doubles a message', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'sgw-lobby-instances-'))
    const env = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: await freshDatabaseUrl(), AVATAR_DIR: join(directory, 'avatars') }
    const [a, b] = [await startService(env), await startService(env)]
    // Bob's way in: instance b, and a as the backup, as a load balancer fails over.
    const balancer = await startNginx(gatewayProxy([b.baseUrl, a.baseUrl]))
    try {
      const { aliceSession, room, authors, alice, bob } = await twoPlayersInARoom(a, 'split', 'Reactor hall', balancer.baseUrl)
      await write(alice.page, 'Starting the shift')
      await bob.page.locator('#messages li', { hasText: 'Starting the shift' }).waitFor()
      await write(bob.page, 'Ready here')
      await alice.page.locator('#messages li', { hasText: 'Ready here' }).waitFor()

      // Bob sends, and his instance dies at that moment: the message is stored or refused, never lost.
      await write(bob.page, 'Closing valve 7')
      b.child.kill('SIGKILL')
      await b.child.exited
      // Alice goes on writing on her instance while Bob's page finds its way to it.
      for (let i = 1; i <= 5; i++) expect((await a.client.post(`/rooms/${room.room_id}/messages`, { body: `Reading ${i}` }, aliceSession.access)).status).toBe(201)
      await bob.page.locator('#messages li', { hasText: 'Reading 5' }).waitFor()
      await bob.page.locator('#connection.connected').waitFor()
      const closing = bob.page.locator('#messages li', { hasText: 'Closing valve 7' })
      await closing.and(bob.page.locator('li[data-id], li.failed')).waitFor()
      if (await closing.evaluate((li) => li.classList.contains('failed'))) await closing.getByRole('button', { name: 'Retry' }).click()
      await bob.page.locator('#messages li.pending, #messages li.failed').waitFor({ state: 'detached' })
      await write(bob.page, 'On the other instance now')
      await alice.page.locator('#messages li', { hasText: 'On the other instance now' }).waitFor()
      await alice.page.locator('#messages li', { hasText: 'Closing valve 7' }).waitFor()
      await Bun.sleep(500)
      await bob.screenshot('after-failover')
      await alice.screenshot('after-failover')

      const history = await historyLines(a.client, room.room_id, aliceSession, authors)
      expect(history.filter((line) => line === 'split_bob: Closing valve 7')).toHaveLength(1)
      expect(history.length).toBe(9)
      expect(await chatLines(alice.page)).toEqual(history)
      expect(await chatLines(bob.page)).toEqual(history)
      for (const browsing of [alice, bob]) expect(browsing.blocked).toEqual([])
    } finally {
      balancer.stop()
      for (const service of [a, b]) service.child.kill('SIGKILL')
    }
  }, 90_000)
})
