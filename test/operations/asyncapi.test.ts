import { afterAll, describe, expect, test } from 'bun:test'
import { Parser } from '@asyncapi/parser'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import { CLOSE } from '../../src/modules/realtime/protocol'
import { browse, browserAvailable } from '../support/browser'
import { closeTestResources, STORE, startTestServer } from '../support/harness'
import { lobby } from '../support/lobby'
import { connect, follower, subscribe } from '../support/realtime'

// The AsyncAPI document of /realtime: valid for a real AsyncAPI parser, true to the frames the service
// sends, and readable by people at /asyncapi. Screenshots of the page land in test-output/asyncapi/.

afterAll(closeTestResources)

describe(`the AsyncAPI document on ${STORE}`, () => {
  test('it is a valid AsyncAPI 3.0 document, served beside the OpenAPI one, naming every close code', async () => {
    const server = await startTestServer({ API_PREFIX: '/api/v1' })
    const reply = await fetch(`${server.baseUrl}/asyncapi/json`)
    expect(reply.status).toBe(200)
    const document: any = await reply.json()
    const { document: parsed, diagnostics } = await new Parser().parse(JSON.stringify(document))
    // Severity 0 is an error, 1 a warning; what is left are hints (such as "3.1.0 exists").
    expect(diagnostics.filter((diagnostic) => diagnostic.severity <= 1).map((diagnostic) => diagnostic.message)).toEqual([])
    expect(parsed?.version()).toBe('3.0.0')
    expect(
      parsed
        ?.channels()
        .all()
        .map((channel) => channel.address()),
    ).toEqual(['/api/v1/realtime', 'sim_gateway.events'])
    expect(
      parsed
        ?.operations()
        .all()
        .map((operation) => operation.action()),
    ).toEqual(['receive', 'send', 'send'])
    for (const code of Object.values(CLOSE)) expect(document.info.description).toContain(`- ${code}: `)
  })

  test('every frame a real session gets, and every frame a client may send, matches its message in the document', async () => {
    const server = await startTestServer()
    const document: any = await (await fetch(`${server.baseUrl}/asyncapi/json`)).json()
    const ajv = new Ajv({ strict: false })
    addFormats(ajv)
    // Keyed by direction: both have a typing frame, and they differ.
    const validators = new Map(Object.entries(document.components.messages).map(([key, message]: [string, any]) => [key, ajv.compile(message.payload)]))
    const server_ = (op: string) => validators.get(`server.${op}`)!
    const client_ = (op: string) => validators.get(`client.${op}`)!
    const owner = await server.client.register('aa_owner')
    const guest = await server.client.register('aa_guest')
    const room = await lobby(server.client).createRoom(owner)
    const socket = await follower(server.baseUrl, owner.access)
    await subscribe(socket, `room:${room.room_id}`)
    await subscribe(socket, 'room:nope')
    await lobby(server.client).seat(owner, room.room_id, guest)
    await server.client.put('/users/me', { username: 'aa_owner_renamed' }, owner.access)
    socket.send({ op: 'ping' })
    socket.send({ op: 'send', room_id: room.room_id, body: 'Documented', client_id: 'aa-1' })
    await socket.until(() => socket.frames.find((frame) => frame.op === 'sent'))
    socket.send({ op: 'send', room_id: room.room_id, body: 'bell\u0007', client_id: 'aa-2' })
    socket.send({ op: 'auth', token: owner.access })
    socket.send({ op: 'unsubscribe', stream: `room:${room.room_id}` })
    await socket.until(() => socket.frames.find((frame) => frame.op === 'unsubscribed'))
    await socket.until(() => socket.frames.find((frame) => frame.op === 'reauthenticated'))
    const seen = new Set(socket.frames.map((frame) => frame.op))
    expect([...seen].sort()).toEqual(['error', 'event', 'hello', 'pong', 'ready', 'reauthenticated', 'sent', 'subscribed', 'unsubscribed'])
    for (const frame of socket.frames) {
      const validate = server_(frame.op)
      expect({ frame, valid: validate(frame), errors: validate.errors }).toMatchObject({ valid: true })
    }
    // And what a client sends: the documented forms are accepted, others closed with 4000.
    const sent = [
      { op: 'auth', token: guest.access },
      { op: 'subscribe', stream: 'user', after: 0, epoch: 'x' },
      { op: 'unsubscribe', stream: 'user' },
      { op: 'ping' },
      { op: 'send', room_id: crypto.randomUUID(), body: 'hello', client_id: 'c-1' },
      { op: 'typing', room_id: crypto.randomUUID() },
    ]
    for (const frame of sent) expect({ frame, valid: client_(frame.op)(frame) }).toEqual({ frame, valid: true })
    // A typing frame naming a user is the server's, not a client's.
    expect(client_('typing')({ op: 'typing', room_id: crypto.randomUUID(), user_id: crypto.randomUUID() })).toBe(false)
    const client = await connect(server.baseUrl)
    for (const frame of sent) client.send(frame)
    await client.until(() => client.frames.find((frame) => frame.op === 'pong'))
    expect(client_('subscribe')({ op: 'subscribe', stream: 'user', after: -1 })).toBe(false)
    // The documented typing frame keeps the socket open (an error frame for a room one does not play in).
    client.send({ op: 'ping' })
    await client.until(() => client.frames.filter((frame) => frame.op === 'pong').length === 2)
    expect(client.frames.find((frame) => frame.op === 'error' && frame.stream?.startsWith('chat:'))).toMatchObject({ error: 'forbidden' })
  })
})

describe.if(browserAvailable)(`the AsyncAPI page in Chromium on ${STORE}`, () => {
  test('it shows every channel, operation and message of the served document, under the page policy, with no request leaving the service', async () => {
    const server = await startTestServer({ API_PREFIX: '/api/v1' })
    const document: any = await (await fetch(`${server.baseUrl}/asyncapi/json`)).json()
    const reply = await fetch(`${server.baseUrl}/asyncapi`)
    expect(reply.status).toBe(200)
    // The component parses documents with code it compiles at run time; here it never needs to.
    expect(reply.headers.get('content-security-policy')).toContain("script-src 'self';")
    expect(reply.headers.get('content-security-policy')).not.toContain('unsafe-eval')

    const browsing = await browse(server.baseUrl, 'asyncapi')
    try {
      const { page, errors, blocked, screenshot } = browsing
      await page.setViewportSize({ width: 1600, height: 900 })
      await page.goto(`${server.baseUrl}/asyncapi`)
      await page.locator('#messages').waitFor()
      await screenshot('page')

      const operations = page.locator('#operations')
      for (const channel of Object.values<any>(document.channels)) expect(await operations.textContent()).toContain(channel.address)
      for (const [id, operation] of Object.entries<any>(document.operations)) {
        const shown = page.locator(`#operation-${operation.action}-${id}`)
        expect({ id, shown: await shown.count() }).toEqual({ id, shown: 1 })
        expect(await shown.textContent()).toContain(operation.summary)
      }
      const messages = Object.entries<any>(document.components.messages)
      expect(messages.length).toBe(Object.values<any>(document.channels).reduce((count, channel) => count + Object.keys(channel.messages).length, 0))
      for (const [key, message] of messages) {
        const shown = page.locator(`[id="message-${key}"]`)
        expect({ key, shown: await shown.count() }).toEqual({ key, shown: 1 })
        expect(await shown.textContent()).toContain(message.title)
        // Its payload opens folded: unfolded, as a reader would, it names every field.
        await shown.getByRole('button', { name: 'Expand all', exact: true }).click()
        const text = await shown.textContent()
        for (const field of Object.keys(message.payload.properties ?? {})) expect({ key, field, shown: text?.includes(field) }).toEqual({ key, field, shown: true })
        if (key === 'client.subscribe') {
          await shown.evaluate((element) => element.scrollIntoView())
          await screenshot('subscribe-message')
        }
        await shown.getByRole('button', { name: 'Collapse all', exact: true }).first().click()
      }
      expect(errors).toEqual([])
      expect(blocked).toEqual([])
    } finally {
      await browsing.close()
    }
  }, 60_000)
})
