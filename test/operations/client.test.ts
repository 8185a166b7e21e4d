import { afterAll, describe, expect, test } from 'bun:test'
import { createGatewayClient, type Tokens } from '../../client/src'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closeTestResources, freshDatabaseUrl, STORE, startTestServer, TEST_DATABASE_URL, TEST_ENV } from '../support/harness'
import { freePort, startService } from '../support/process'

// client/: the typed client the front end uses, against a live instance.

type FetchInput = Parameters<typeof fetch>[0]

afterAll(closeTestResources)

describe(`the typed client (client/) on ${STORE}`, () => {
  test("the README's example runs as written on fresh demo data, and its invitation arrives", async () => {
    const server = await startTestServer({ SEED_DEMO_DATA: 'true' })
    const readme = await Bun.file('client/README.md').text()
    const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!
    // The published name points at the source here; the page's storage is a map.
    const script = [
      'const storage = new Map(); const localStorage = { getItem: (key) => storage.get(key) ?? null, setItem: (key, value) => storage.set(key, value) }',
      example.replace("'@<owner>/sim-gateway-client'", `'${process.cwd()}/client/src'`).replace("'https://gateway.example'", `'${server.baseUrl}'`),
      'if (error) throw new Error(JSON.stringify(error))',
    ].join('\n')
    const file = `${process.cwd()}/test-output/client-readme-example.ts`
    await Bun.write(file, script)
    const run = Bun.spawn([process.execPath, file], { stderr: 'pipe' })
    expect(await new Response(run.stderr).text()).toBe('')
    expect(await run.exited).toBe(0)
    const alice = await server.client.login('alice', 'demo-password')
    const morning = (await server.client.get('/rooms/my', alice.access)).body.rooms.find((room: { room_name: string }) => room.room_name.startsWith('Morning'))
    const dave = await server.client.login('dave', 'demo-password')
    const received = (await server.client.get('/invites/my', dave.access)).body.invitations
    expect(received.map((invitation: { room_id: string; status: string }) => [invitation.room_id, invitation.status])).toContainEqual([morning.room_id, 'pending'])
  })

  test("the main README's first ten minutes run as written on fresh demo data: the history, then one's own message back over the socket", async () => {
    const server = await startTestServer({ SEED_DEMO_DATA: 'true' })
    const readme = await Bun.file('README.md').text()
    const example = /\*\*As a front-end developer\.\*\*[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)![1]!
    const script = example.replace("'./client/src'", `'${process.cwd()}/client/src'`).replace("'http://localhost:3000'", `'${server.baseUrl}'`)
    const file = `${process.cwd()}/test-output/first-ten-minutes.ts`
    await Bun.write(file, script)
    const run = Bun.spawn([process.execPath, file], { stdout: 'pipe', stderr: 'pipe' })
    const [output, errors, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited])
    expect({ errors, code }).toEqual({ errors: '', code: 0 })
    expect(output).toContain('Carol is invited as engineer')
    expect(output).toContain('connection: connected')
    expect(output).toMatch(/chat:0193a000-0000-7000-8000-000000000101 \d+ message_posted Hello from the client/)
  })

  test('registers, logs in, and calls typed routes with the bearer token; logout forgets the tokens', async () => {
    const server = await startTestServer()
    const seen: Array<Tokens | undefined> = []
    const client = createGatewayClient(server.baseUrl, { onTokens: (tokens) => seen.push(tokens) })
    expect((await client.register('eden_player', 'eden-password-1')).status).toBe(201)
    const me = await client.api.auth.me.get()
    expect(me.data?.username).toBe('eden_player')
    const room = await client.api.rooms.post({ room_name: 'Eden room', max_players: 2 })
    expect(room.status).toBe(201)
    const mine = await client.api.rooms.my.get({ query: { limit: 10 } })
    expect(mine.data?.rooms.map((each) => each.room_name)).toEqual(['Eden room'])
    const refused = await client.api.rooms.post({ room_name: '' })
    expect(refused.status).toBe(422)
    expect(refused.error?.value).toMatchObject({ success: false, error: 'validation_error' })
    await client.logout()
    expect(client.tokens).toBeUndefined()
    expect(seen.at(-1)).toBeUndefined()
    expect((await client.api.auth.me.get()).status).toBe(401)
  })

  test('a refused access token is renewed once with the rotating refresh token, however many requests were refused at once', async () => {
    const server = await startTestServer()
    const first = createGatewayClient(server.baseUrl)
    await first.login('root_admin', 'root-admin-password')
    const held = first.tokens!
    let refreshes = 0
    const counting: typeof fetch = ((input: FetchInput, init?: RequestInit) => {
      if (String(input).endsWith('/auth/refresh')) refreshes++
      return fetch(input, init)
    }) as typeof fetch
    // As if the access token had expired while the app slept.
    const client = createGatewayClient(server.baseUrl, { tokens: { access: 'expired.access.token', refresh: held.refresh }, fetch: counting })
    const answers = await Promise.all(Array.from({ length: 5 }, () => client.api.users.me.get()))
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200])
    expect(refreshes).toBe(1)
    expect(client.tokens?.refresh).not.toBe(held.refresh)
    // The session lives on: the new pair works, and the spent refresh token is not reused.
    expect((await client.api.auth.me.get()).data?.username).toBe('root_admin')
    expect(await client.refresh()).toBe(true)
    expect((await client.api.auth.me.get()).status).toBe(200)
  })

  test('when the refresh token is refused too, the client forgets the session and answers the 401', async () => {
    const server = await startTestServer()
    const client = createGatewayClient(server.baseUrl, { tokens: { access: 'expired.access.token', refresh: 'long-gone-refresh-token' } })
    const answer = await client.api.auth.me.get()
    expect(answer.status).toBe(401)
    expect(client.tokens).toBeUndefined()
  })
})

describe(`the client's realtime part on ${STORE}`, () => {
  test('positions kept across page loads resume exactly; many subscriptions at once are paced under the rate limit; a new epoch asks for a refetch', async () => {
    const server = await startTestServer()
    const gateway = createGatewayClient(server.baseUrl)
    await gateway.register('rt_client', 'rt-client-password')
    const rename = (name: string) => gateway.api.users.me.put({ username: name })
    const seen: number[] = []
    const first = gateway.realtime({ onEvent: ({ seq }) => seen.push(seq) })
    first.subscribe('user', 0)
    await rename('rt_client_a')
    await rename('rt_client_b')
    while (seen.length < 2) await Bun.sleep(20)
    const saved = first.positions
    first.close()

    // Three changes while away; the next page load resumes from the saved positions and asks for 'user' again.
    for (const name of ['rt_client_c', 'rt_client_d', 'rt_client_e']) await rename(name)
    const later: number[] = []
    const unsubscribed: string[] = []
    const frames: string[] = []
    class Recording extends WebSocket {
      constructor(url: string | URL) {
        super(url)
        this.addEventListener('message', (message) => frames.push(JSON.parse(String(message.data)).op))
      }
    }
    const second = gateway.realtime({
      resumeFrom: saved,
      onEvent: ({ seq }) => later.push(seq),
      onUnsubscribed: (stream, reason) => unsubscribed.push(reason),
      WebSocket: Recording as typeof WebSocket,
    })
    second.subscribe('user')
    // Twenty-four more streams at once (rooms that do not exist): more frames than REALTIME_MESSAGE_RATE allows in a burst.
    for (let i = 0; i < 24; i++) second.subscribe(`room:${crypto.randomUUID()}`)
    const deadline = Date.now() + 8000
    while (unsubscribed.length < 24 && Date.now() < deadline) await Bun.sleep(50)
    expect(later).toEqual([3, 4, 5])
    expect(unsubscribed).toEqual(Array(24).fill('not_found'))
    expect(frames.filter((op) => op === 'ready')).toHaveLength(1)
    second.close()

    const resets: string[] = []
    const third = gateway.realtime({ resumeFrom: { ...saved, epoch: 'another-database' }, onEvent: () => {}, onReset: (stream) => resets.push(stream) })
    while (resets.length === 0 && Date.now() < deadline + 3000) await Bun.sleep(20)
    expect(resets).toEqual(Object.keys(saved.streams))
    third.close()
  }, 20_000)

  test('through a kill -9 and a restart: the state goes reconnecting and back, every message arrives once and in order, and typing and presence come as frames', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'sgw-client-restart-'))
    const databaseUrl = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(directory, 'gateway.sqlite')}`
    const env = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: databaseUrl }
    const port = await freePort()
    let service = await startService(env, port)
    const gateway = createGatewayClient(service.baseUrl)
    await gateway.register('rt_restart_owner', 'rt-restart-password')
    const guest = createGatewayClient(service.baseUrl)
    await guest.register('rt_restart_guest', 'rt-restart-password')
    const room = (await gateway.api.rooms.post({ room_name: 'Restarts', max_players: 2 })).data!
    const invitation = (await gateway.api.rooms({ room_id: room.room_id }).invite.post({ user_name: 'rt_restart_guest', player_role: 'operator' })).data!
    expect((await guest.api.rooms({ room_id: room.room_id }).join.post({ ct: invitation.ct! })).status).toBe(200)

    const states: string[] = []
    const bodies: string[] = []
    const frames: Array<{ op: string; [field: string]: unknown }> = []
    const chat = `chat:${room.room_id}`
    const owner = gateway.realtime({
      onEvent: ({ event }) => event.type === 'message_posted' && bodies.push(String(event.body)),
      onState: (state) => states.push(state),
      onFrame: (frame) => frames.push(frame),
    })
    owner.subscribe(chat)
    const until = async (done: () => boolean, what: string) => {
      const deadline = Date.now() + 10_000
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`waited in vain for ${what}`)
        await Bun.sleep(20)
      }
    }
    await until(() => frames.some((frame) => frame.op === 'subscribed'), 'subscribed')
    expect(frames.find((frame) => frame.op === 'subscribed')).toMatchObject({ stream: chat, online: [expect.any(String)] })
    const other = guest.realtime({ onEvent: () => {} })
    other.subscribe(chat)
    await until(() => frames.some((frame) => frame.op === 'presence' && frame.online === true), 'presence')
    other.send({ op: 'typing', room_id: room.room_id })
    await until(() => frames.some((frame) => frame.op === 'typing'), 'typing')
    const say = (body: string) => guest.api.rooms({ room_id: room.room_id }).messages.post({ body })
    await say('before')
    await until(() => bodies.length === 1, 'the first message')

    service.child.kill('SIGKILL')
    await service.child.exited
    await until(() => states.at(-1) === 'reconnecting', 'reconnecting')
    service = await startService(env, port)
    await say('after one')
    await say('after two')
    await until(() => bodies.length === 3 && states.at(-1) === 'connected', 'the messages after the restart')
    await Bun.sleep(300)
    expect(bodies).toEqual(['before', 'after one', 'after two'])
    expect(states).toEqual(['connected', 'reconnecting', 'connected'])
    owner.close()
    other.close()
    expect(owner.state).toBe('ended')
    service.child.kill('SIGKILL')
    await service.child.exited
    rmSync(directory, { recursive: true, force: true })
  }, 40_000)
})
