import { afterAll, describe, expect, test } from 'bun:test'
import { accessTokenSigner } from '../../src/modules/sessions/tokens'
import { userStream } from '../../src/modules/events/model'
import { CLOSE } from '../../src/modules/realtime/protocol'
import { closeTestResources, STORE, startTestServer, TEST_ENV } from '../support/harness'
import { startService } from '../support/process'
import { connect, follower, subscribe } from '../support/realtime'

// The /realtime protocol's edges: token renewal and expiry, resuming when the log cannot, and every limit.

afterAll(closeTestResources)

type Server = Awaited<ReturnType<typeof startTestServer>>

/** An access token for the session of `access`, expiring in `seconds`: what a refresh would hand out, only shorter. */
async function tokenExpiringIn(server: Server, access: string, seconds: number) {
  const { sub, sid } = JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString())
  const signer = accessTokenSigner({ ...server.config.jwt, secret: server.context.jwtSecret })
  return signer.sign({ sub, sid, jti: crypto.randomUUID(), exp: Math.floor(Date.now() / 1000) + seconds })
}

/** Writes `count` events of `size` bytes or so to the user's stream, as other changes would. */
async function fillStream(server: Server, userId: string, count: number, size = 100) {
  await server.context.db.transaction(async (tx) => {
    for (let i = 0; i < count; i++)
      await server.context.events.emit(tx, [userStream(userId), { type: 'account_changed', user_id: userId, fields: [`${i}`.padEnd(size, 'x')] }])
  })
}

describe(`realtime protocol on ${STORE}`, () => {
  test('a fresh token sent over the open socket keeps it past the first one; without one it closes 4002 at expiry', async () => {
    const server = await startTestServer()
    const user = await server.client.register('rp_renewer')
    const renewed = await connect(server.baseUrl)
    renewed.send({ op: 'auth', token: await tokenExpiringIn(server, user.access, 2) })
    const lapsing = await connect(server.baseUrl)
    lapsing.send({ op: 'auth', token: await tokenExpiringIn(server, user.access, 2) })
    await renewed.until(() => renewed.frames.find((frame) => frame.op === 'ready'))
    renewed.send({ op: 'auth', token: await tokenExpiringIn(server, user.access, 60) })
    expect(await renewed.until(() => renewed.frames.find((frame) => frame.op === 'reauthenticated'))).toMatchObject({ expires_at: expect.any(String) })
    expect(await lapsing.closed()).toMatchObject({ code: CLOSE.tokenExpired })
    await Bun.sleep(300)
    renewed.send({ op: 'ping' })
    expect(await renewed.until(() => renewed.frames.find((frame) => frame.op === 'pong'))).toBeTruthy()

    // A token of someone else is no renewal.
    const other = await server.client.register('rp_other')
    renewed.send({ op: 'auth', token: other.access })
    expect(await renewed.closed()).toMatchObject({ code: CLOSE.unauthorized })

    // A token that expired before the first auth frame: 4002 too (refresh it), not 4001 (log in again).
    const late = await connect(server.baseUrl)
    late.send({ op: 'auth', token: await tokenExpiringIn(server, user.access, -5) })
    expect(await late.closed()).toMatchObject({ code: CLOSE.tokenExpired })
    // Expired and forged (signed with another key): 4001.
    const forgedSigner = accessTokenSigner({ ...server.config.jwt, secret: 'another-secret-that-is-long-enough-for-hs256' })
    const { sub, sid } = JSON.parse(Buffer.from(user.access.split('.')[1]!, 'base64url').toString())
    const forged = await connect(server.baseUrl)
    forged.send({ op: 'auth', token: await forgedSigner.sign({ sub, sid, jti: crypto.randomUUID(), exp: Math.floor(Date.now() / 1000) - 5 }) })
    expect(await forged.closed()).toMatchObject({ code: CLOSE.unauthorized })
  })

  test('resuming: exact when the log has it; recovered false when trimmed, from another epoch, or ahead of the log', async () => {
    const server = await startTestServer()
    const user = await server.client.register('rp_resumer')
    await fillStream(server, user.userId, 5)
    const socket = await follower(server.baseUrl, user.access)
    const stream = socket.userStream
    const ready = socket.frames.find((frame) => frame.op === 'ready')
    const resume = async (after: number, epoch = ready.epoch) => {
      const fresh = await connect(server.baseUrl)
      fresh.send({ op: 'auth', token: user.access })
      const answer = await subscribe(fresh, 'user', after)
      fresh.send({ op: 'subscribe', stream: 'user', after, epoch })
      fresh.close()
      return { answer, seqs: fresh.events(stream).map((frame) => frame.seq) }
    }
    const again = await connect(server.baseUrl)
    again.send({ op: 'auth', token: user.access })
    again.send({ op: 'subscribe', stream: 'user', after: 2, epoch: ready.epoch })
    expect(await again.until(() => again.frames.find((frame) => frame.op === 'subscribed'))).toMatchObject({ recovered: true, last_seq: 5 })
    expect(again.events(stream).map((frame) => frame.seq)).toEqual([3, 4, 5])

    const otherEpoch = await connect(server.baseUrl)
    otherEpoch.send({ op: 'auth', token: user.access })
    otherEpoch.send({ op: 'subscribe', stream: 'user', after: 2, epoch: 'another-database' })
    expect(await otherEpoch.until(() => otherEpoch.frames.find((frame) => frame.op === 'subscribed'))).toMatchObject({ recovered: false, last_seq: 5 })
    expect(otherEpoch.events(stream)).toEqual([])

    const ahead = await resume(9)
    expect(ahead.answer).toMatchObject({ recovered: false, last_seq: 5 })
    expect(ahead.seqs).toEqual([])

    // Retention trims 1..5; the stream goes on at 6. A client at 3 lost 4 and 5: it is told so.
    await server.context.events.purge(Date.now() + server.config.eventRetention * 1000 + 1000)
    await fillStream(server, user.userId, 1)
    const trimmed = await resume(3)
    expect(trimmed.answer).toMatchObject({ recovered: false, last_seq: 6 })
    const current = await resume(5)
    expect(current.answer).toMatchObject({ recovered: true, last_seq: 6 })
    expect(current.seqs).toEqual([6])
  })

  test('REALTIME_AUTH_TIMEOUT bounds the client, not the server: a good auth frame sent at once is answered ready however long the server takes over it', async () => {
    const server = await startTestServer({ REALTIME_AUTH_TIMEOUT: '1' })
    const user = await server.client.register('rp_slow_server')
    // The server as a reconnection storm makes it: recording the arrival takes longer than the timeout.
    const presence = server.context.presence
    const arrived = presence.arrived.bind(presence)
    presence.arrived = async (userId: string) => {
      await Bun.sleep(1500)
      return arrived(userId)
    }
    const started = performance.now()
    const socket = await follower(server.baseUrl, user.access)
    expect(performance.now() - started).toBeGreaterThan(1400)
    expect(socket.frames.some((frame) => frame.op === 'ready')).toBe(true)
    socket.close()
  })

  test('limits: auth timeout, bad frames, frame size, message rate, sockets per user, subscriptions per socket, sockets per instance', async () => {
    const server = await startTestServer({
      REALTIME_AUTH_TIMEOUT: '1',
      REALTIME_MAX_FRAME_BYTES: '1024',
      REALTIME_MESSAGE_RATE: '5',
      REALTIME_MAX_SOCKETS_PER_USER: '2',
      REALTIME_MAX_SUBSCRIPTIONS: '2',
      REALTIME_MAX_SOCKETS: '6',
    })
    const user = await server.client.register('rp_limited')
    const silent = await connect(server.baseUrl)
    expect(await silent.closed()).toMatchObject({ code: CLOSE.authTimeout })

    const closesWith = async (frame: unknown) => {
      const socket = await follower(server.baseUrl, user.access)
      socket.send(frame as object)
      const { code } = await socket.closed()
      return code
    }
    expect(await closesWith({ op: 'subscribe', stream: 'user', after: 2 ** 53 })).toBe(CLOSE.badFrame)
    expect(await closesWith({ op: 'subscribe', stream: 'user', after: -1 })).toBe(CLOSE.badFrame)
    expect(await closesWith({ op: 'subscribe', stream: 'user', after: '1' })).toBe(CLOSE.badFrame)
    expect(await closesWith({ op: 'subscribe', stream: { nested: [[[[]]]] } })).toBe(CLOSE.badFrame)
    expect(await closesWith({ op: 'dance' })).toBe(CLOSE.badFrame)
    expect(await closesWith({ op: 'auth' })).toBe(CLOSE.badFrame)
    const garbled = await follower(server.baseUrl, user.access)
    garbled.sendRaw('{"op": "ping"')
    expect((await garbled.closed()).code).toBe(CLOSE.badFrame)
    // A plain GET is no websocket: a 400 in the envelope.
    const plain = await server.client.get('/realtime')
    expect(plain).toMatchObject({ status: 400, body: { error: 'bad_request' } })
    expect(await closesWith({ op: 'ping', padding: 'x'.repeat(2000) })).toBe(CLOSE.frameTooBig)

    const flooder = await follower(server.baseUrl, user.access)
    for (let i = 0; i < 20; i++) flooder.send({ op: 'ping' })
    expect((await flooder.closed()).code).toBe(CLOSE.rateLimited)

    const [first, second] = [await follower(server.baseUrl, user.access), await follower(server.baseUrl, user.access)]
    const third = await connect(server.baseUrl)
    third.send({ op: 'auth', token: user.access })
    expect((await third.closed()).code).toBe(CLOSE.tooManySockets)
    // Two subscriptions (user and one room) fill the socket's allowance.
    const room = (await server.client.post('/rooms', { room_name: 'Limits' }, user.access)).body
    expect(await subscribe(first, `room:${room.room_id}`)).toMatchObject({ op: 'subscribed' })
    const another = (await server.client.post('/rooms', { room_name: 'One too many' }, user.access)).body
    expect(await subscribe(first, `room:${another.room_id}`)).toMatchObject({ op: 'error', error: 'too_many_subscriptions' })
    expect(await subscribe(first, 'user')).toMatchObject({ op: 'error', error: 'already_subscribed' })

    // Six sockets per instance: two open here, four more fit, the seventh is refused.
    const others = await Promise.all(Array.from({ length: 4 }, () => connect(server.baseUrl)))
    const overflow = await connect(server.baseUrl)
    expect((await overflow.closed()).code).toBe(CLOSE.serverFull)
    expect(second.frames.at(-1)).toMatchObject({ op: 'subscribed' })
    for (const socket of others) socket.close()
  })

  test('REALTIME_MAX_SOCKETS_PER_ADDRESS holds against a burst of 40 connects: exactly the limit open, the rest refused with 429', async () => {
    const server = await startTestServer({ REALTIME_MAX_SOCKETS_PER_ADDRESS: '10' })
    const url = `${server.baseUrl.replace('http', 'ws')}/realtime`
    const attempts = Array.from({ length: 40 }, () => {
      const socket = new WebSocket(url)
      return new Promise<WebSocket | undefined>((resolve) => {
        socket.onopen = () => resolve(socket)
        socket.onerror = () => resolve(undefined)
      })
    })
    const opened = (await Promise.all(attempts)).filter((socket) => socket !== undefined)
    expect(opened.length).toBe(10)
    const refused = await server.client.get('/realtime')
    expect(refused).toMatchObject({ status: 429, body: { error: 'rate_limited' } })
    expect(refused.headers.get('retry-after')).toBe('10')
    // Closing gives the places back.
    for (const socket of opened) socket.close()
    const deadline = Date.now() + 3000
    while ((await server.client.get('/realtime')).status === 429 && Date.now() < deadline) await Bun.sleep(20)
    expect((await server.client.get('/realtime')).status).toBe(400)
  })

  test('SIGTERM tells every socket to go elsewhere (1001) and the process still exits 0', async () => {
    const service = await startService({ ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: 'sqlite::memory:' })
    const user = await service.client.register('rp_drained')
    const socket = await follower(service.baseUrl, user.access)
    service.child.kill('SIGTERM')
    expect((await socket.closed()).code).toBe(CLOSE.serverDraining)
    expect(await service.child.exited).toBe(0)
  })

  test('a client that stops reading is closed with 4009 once REALTIME_SLOW_CONSUMER_BYTES pile up, not fed silently-dropped frames', async () => {
    const server = await startTestServer({ REALTIME_SLOW_CONSUMER_BYTES: '1048576' })
    const user = await server.client.register('rp_slow')
    const reader = await follower(server.baseUrl, user.access)
    const slow = await rawSocket(server.baseUrl)
    slow.send({ op: 'auth', token: user.access })
    slow.send({ op: 'subscribe', stream: 'user' })
    await Bun.sleep(200)
    slow.pause()
    // Some 16 MB of events, more than the kernel's buffers hold, in commits small enough for a client that reads.
    for (let batch = 0; batch < 80; batch++) {
      await fillStream(server, user.userId, 50, 4000)
      // The reader lives in this very process: it reads only when the loop turns.
      await Bun.sleep(5)
    }
    await Bun.sleep(600)
    slow.resume()
    const code = await slow.closeCode()
    expect(code).toBe(CLOSE.slowConsumer)
    // The one that kept reading got every event, in order.
    await reader.until(() => reader.events(reader.userStream).length === 4000, 15_000)
    expect(reader.events(reader.userStream).map((frame) => frame.seq)).toEqual(Array.from({ length: 4000 }, (_, i) => i + 1))
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text()
    expect(metrics).toContain('realtime_closes_total{reason="slowConsumer"} 1')
    expect(metrics).toMatch(/realtime_deliveries_total \d{4}/)
    expect(metrics).toContain('events_written_total{type="account_changed"} 4000')
  }, 60_000)
})

/** A websocket over a bare TCP socket, whose reading can be paused: a client that stops reading. */
async function rawSocket(baseUrl: string) {
  const { hostname, port } = new URL(baseUrl)
  let received = Buffer.alloc(0)
  let upgraded: () => void
  const ready = new Promise<void>((resolve) => (upgraded = resolve))
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_, chunk) {
        received = Buffer.concat([received, chunk])
        if (received.includes('\r\n\r\n')) upgraded()
      },
    },
  })
  socket.write(
    `GET /realtime HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  )
  await ready
  return {
    send(frame: object) {
      // Client frames are masked (RFC 6455); a zero mask leaves the payload as it is.
      const payload = Buffer.from(JSON.stringify(frame))
      const header =
        payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255])
      socket.write(Buffer.concat([header, Buffer.alloc(4), payload]))
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    /** The code of the close frame the server sent, read once everything before it has been. */
    async closeCode(): Promise<number> {
      const deadline = Date.now() + 20_000
      while (Date.now() < deadline) {
        const at = findCloseFrame(received)
        if (at !== undefined) return at
        await Bun.sleep(50)
      }
      throw new Error('no close frame')
    },
  }
}

/** Walks the server's frames (unmasked) to the close frame, if it has come. */
function findCloseFrame(bytes: Buffer): number | undefined {
  let offset = bytes.indexOf('\r\n\r\n') + 4
  while (offset + 2 <= bytes.length) {
    const opcode = bytes[offset]! & 0x0f
    let length = bytes[offset + 1]! & 0x7f
    let start = offset + 2
    if (length === 126) [length, start] = [bytes.readUInt16BE(offset + 2), offset + 4]
    else if (length === 127) [length, start] = [Number(bytes.readBigUInt64BE(offset + 2)), offset + 10]
    if (start + length > bytes.length) return undefined
    if (opcode === 0x8) return bytes.readUInt16BE(start)
    offset = start + length
  }
  return undefined
}
