import { afterAll, describe, expect, test } from 'bun:test'
import { SQL } from 'bun'
import { createGatewayClient, type RealtimeConnection, type RealtimeEvent } from '../../client/src'
import { closeTestResources, freshDatabaseUrl, onlyOn, type Session, TEST_ENV } from '../support/harness'
import { lobby } from '../support/lobby'
import { follower, subscribe } from '../support/realtime'
import { natsAvailable, natsBus, privateNats } from '../support/nats'
import { type ServiceProcess, startService } from '../support/process'

// Several instances on one PostgreSQL: the bus (LISTEN/NOTIFY, or NATS) wakes each one, the event
// log is the data. SQLite is one instance's own store, so this part runs on PostgreSQL only.

const running: ServiceProcess[] = []
// The instances go first, then their databases.
afterAll(async () => {
  for (const service of running) service.child.kill('SIGKILL')
  await Promise.all(running.map((service) => service.child.exited))
  await closeTestResources()
})

async function startInstances(count: number, env: Record<string, string>) {
  const shared = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: await freshDatabaseUrl(), ...env }
  const started = await Promise.all(Array.from({ length: count }, () => startService(shared)))
  running.push(...started)
  return { services: started, env: shared }
}

const ENGINES = [
  { name: 'LISTEN/NOTIFY', available: true, env: (): Record<string, string> => ({}) },
  { name: 'NATS', available: natsAvailable, env: () => natsBus() },
]
for (const engine of ENGINES)
  describe.if(onlyOn('postgres', 'realtime across instances (they hear each other through a bus)') && engine.available)(
    `realtime across PostgreSQL instances, woken by ${engine.name}`,
    () => acrossInstances(engine),
  )

/** The same tests on each engine; each test's instances on subjects (or a database) of their own. */
function acrossInstances(engine: (typeof ENGINES)[number]) {
  const instances = (count: number, env: Record<string, string> = {}) => startInstances(count, { ...engine.env(), ...env })

  test('players on two instances hear each other join and leave; a logout on A closes the socket on B', async () => {
    const {
      services: [a, b],
    } = await instances(2)
    const owner = await a!.client.register('ri_owner')
    const guest = await b!.client.register('ri_guest')
    const room = await lobby(a!.client).createRoom(owner)
    const ownerSocket = await follower(a!.baseUrl, owner.access)
    await subscribe(ownerSocket, `room:${room.room_id}`)
    const guestSocket = await follower(b!.baseUrl, guest.access)

    const invitation = await lobby(a!.client).invite(owner, room.room_id, guest)
    await guestSocket.until(() => guestSocket.types(guestSocket.userStream).includes('invitation_received'))
    expect((await b!.client.post(`/rooms/${room.room_id}/join`, { ct: invitation.ct }, guest.access)).status).toBe(200)
    await ownerSocket.until(() => ownerSocket.types(`room:${room.room_id}`).includes('member_joined'))
    await subscribe(guestSocket, `room:${room.room_id}`)
    expect((await a!.client.delete(`/rooms/${room.room_id}/members/me`, owner.access)).status).toBe(200)
    await guestSocket.until(() => guestSocket.types(`room:${room.room_id}`).includes('owner_changed'))
    expect(guestSocket.types(`room:${room.room_id}`)).toEqual(['member_left', 'owner_changed'])

    await a!.client.post('/auth/logout', undefined, guest.access)
    expect((await guestSocket.closed()).code).toBe(4003)
  })

  test('presence and typing cross instances; a player on an instance killed with kill -9 goes offline within REALTIME_PRESENCE_TIMEOUT and a renewal', async () => {
    const {
      services: [a, b],
    } = await instances(2, { REALTIME_PRESENCE_TIMEOUT: '3' })
    const owner = await a!.client.register('presence_owner')
    const player = await a!.client.register('presence_player')
    const room = await lobby(a!.client).createRoom(owner)
    await lobby(a!.client).seat(owner, room.room_id, player)
    const stream = `chat:${room.room_id}`
    const ownerSocket = await follower(a!.baseUrl, owner.access)
    await subscribe(ownerSocket, stream)
    const playerSocket = await follower(b!.baseUrl, player.access)
    await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'presence' && frame.user_id === player.userId && frame.online))
    await subscribe(playerSocket, stream)
    playerSocket.send({ op: 'typing', room_id: room.room_id })
    await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'typing' && frame.user_id === player.userId))
    const killed = Date.now()
    b!.child.kill('SIGKILL')
    await ownerSocket.until(() => ownerSocket.frames.find((frame) => frame.op === 'presence' && frame.user_id === player.userId && !frame.online), 10_000)
    // Stale after 3 s, seen by A's next renewal (every second).
    expect(Date.now() - killed).toBeLessThan(5500)
  }, 30_000)

  test('a player in 250 open rooms comes online and goes offline in every one; the reap of a dead instance reaches every user of it (SECURITY 30)', async () => {
    const {
      services: [a, b],
      env,
    } = await instances(2, { REALTIME_PRESENCE_TIMEOUT: '3' })
    const owner = await a!.client.register('many_rooms_owner')
    const busy = await a!.client.register('many_rooms_player')
    const others = await Promise.all([0, 1, 2, 3].map((i) => a!.client.register(`many_rooms_other_${i}`)))
    const room = await lobby(a!.client).createRoom(owner, { max_players: 8 })
    for (const player of [busy, ...others]) await lobby(a!.client).seat(owner, room.room_id, player)
    // 249 more open rooms for the busy player, and 50 closed ones (which never hear of presence), written straight to the store.
    const database = new SQL(env.DATABASE_URL, { max: 1 })
    const now = new Date().toISOString()
    for (let i = 0; i < 299; i++) {
      const roomId = crypto.randomUUID()
      await database.unsafe('INSERT INTO rooms (room_id, room_name, owner_id, max_players, is_closed, created_at, updated_at) VALUES ($1, $2, $3, 2, $4, $5, $5)', [
        roomId,
        `extra ${i}`,
        owner.userId,
        i >= 249,
        now,
      ])
      await database.unsafe('INSERT INTO room_players (room_id, user_id, game_role, joined_at) VALUES ($1, $2, $3, $4)', [roomId, busy.userId, 'operator', now])
    }
    await database.close()

    const watcher = await follower(a!.baseUrl, owner.access)
    await subscribe(watcher, `chat:${room.room_id}`)
    const presence = (userId: string, online: boolean) => watcher.frames.find((frame) => frame.op === 'presence' && frame.user_id === userId && frame.online === online)
    const sockets = await Promise.all([busy, ...others].map((player) => follower(b!.baseUrl, player.access)))
    for (const player of [busy, ...others]) await watcher.until(() => presence(player.userId, true))
    b!.child.kill('SIGKILL')
    for (const player of [busy, ...others]) await watcher.until(() => presence(player.userId, false), 10_000)
    for (const socket of sockets) socket.close()
  }, 60_000)

  test('an instance paused past REALTIME_PRESENCE_TIMEOUT writes back its users when it resumes: they are online again (SECURITY 31)', async () => {
    const {
      services: [a, b],
    } = await instances(2, { REALTIME_PRESENCE_TIMEOUT: '3' })
    const owner = await a!.client.register('pause_owner')
    const player = await a!.client.register('pause_player')
    const room = await lobby(a!.client).createRoom(owner)
    await lobby(a!.client).seat(owner, room.room_id, player)
    const watcher = await follower(a!.baseUrl, owner.access)
    await subscribe(watcher, `chat:${room.room_id}`)
    const changes = () => watcher.frames.filter((frame) => frame.op === 'presence' && frame.user_id === player.userId).map((frame) => frame.online)
    const socket = await follower(b!.baseUrl, player.access)
    await watcher.until(() => changes().length === 1)
    b!.child.kill('SIGSTOP')
    await watcher.until(() => changes().length === 2, 10_000)
    b!.child.kill('SIGCONT')
    await watcher.until(() => changes().length === 3, 10_000)
    expect(changes()).toEqual([true, false, true])
    // And a new subscriber sees them online, as the store now says.
    const late = await follower(a!.baseUrl, owner.access)
    expect((await subscribe(late, `chat:${room.room_id}`)).online).toContain(player.userId)
    socket.close()
  }, 60_000)

  // NATS's own: the NATS bus tests below stop the NATS server.
  if (engine.name === 'LISTEN/NOTIFY') test('an instance whose LISTEN connection drops reads what it missed from the log: nothing lost, nothing doubled', async () => {
    const {
      services: [a, b],
      env,
    } = await instances(2)
    const user = await a!.client.register('ri_listener')
    const socket = await follower(b!.baseUrl, user.access)
    const admin = new SQL(env.DATABASE_URL, { max: 1 })
    const listeners = () => admin.unsafe("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'")
    expect((await listeners()).length).toBe(2)
    // Every instance's listener is cut; changes go on meanwhile, on A.
    await admin.unsafe("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'")
    for (let i = 0; i < 10; i++) await a!.client.put('/users/me', { username: `ri_listener_${i}` }, user.access)
    await socket.until(() => socket.events(socket.userStream).length === 10, 10_000)
    expect(socket.events(socket.userStream).map((frame) => frame.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    // Both listeners come back (Bun.SQL reconnects them with backoff).
    const deadline = Date.now() + 10_000
    while ((await listeners()).length < 2 && Date.now() < deadline) await Bun.sleep(100)
    expect((await listeners()).length).toBe(2)
    await admin.close()
  })

  test('three instances, one killed with kill -9 every two seconds while changes go on: every client ends with every event of its streams once, in order', async () => {
    const { services, env } = await instances(3)
    const pick = () => services.filter((service) => service.child.exitCode === null && !service.child.killed)
    /** A REST call to any live instance; one that dies under it is tried on another. */
    const call = async (method: string, path: string, token: string, body?: unknown) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const live = pick()
        const target = live[attempt % live.length]
        if (!target) {
          await Bun.sleep(100)
          continue
        }
        try {
          return await target.client.call(method, path, { token, body })
        } catch {
          await Bun.sleep(50)
        }
      }
      throw new Error(`${method} ${path}: no instance answered`)
    }

    const first = services[0]!.client
    const owner = await first.register('chaos_owner')
    const players: Session[] = []
    for (let i = 0; i < 5; i++) players.push(await first.register(`chaos_player_${i}`))
    const churn: Session[] = []
    for (let i = 0; i < 4; i++) churn.push(await first.register(`chaos_churn_${i}`))
    const room = await lobby(first).createRoom(owner, { max_players: 16 })
    const side = await lobby(first).createRoom(owner)
    for (const player of players) await lobby(first).seat(owner, room.room_id, player)

    // Each tracked person follows their own stream and the room's, from the start, on one of the instances.
    const received = new Map<string, RealtimeEvent[]>()
    // Every frame as it came off the wire, before the client's own check for repeats: the server must send none.
    const wire = new Map<string, Array<{ op: string; stream?: string; seq?: number }>>()
    const connections: RealtimeConnection[] = []
    for (const [index, person] of [owner, ...players].entries()) {
      const events: RealtimeEvent[] = []
      const frames: Array<{ op: string; stream?: string; seq?: number }> = []
      class RecordingSocket extends WebSocket {
        constructor(url: string | URL) {
          super(url)
          this.addEventListener('message', (message) => frames.push(JSON.parse(String(message.data))))
        }
      }
      const connection = createGatewayClient(services[index % 3]!.baseUrl, { tokens: { access: person.access, refresh: person.refresh } }).realtime({
        onEvent: (event) => events.push(event),
        backoff: { initial: 50, max: 500 },
        WebSocket: RecordingSocket as typeof WebSocket,
      })
      connection.subscribe('user', 0)
      connection.subscribe(`room:${room.room_id}`, 0)
      connections.push(connection)
      received.set(person.userId, events)
      wire.set(person.userId, frames)
    }

    let changing = true
    const changes = (async () => {
      for (let round = 0; changing; round++) {
        const mover = churn[round % churn.length]!
        const invited = await call('POST', `/rooms/${room.room_id}/invite`, owner.access, { user_name: mover.username, player_role: 'operator' })
        if (invited.status === 201) await call('POST', `/rooms/${room.room_id}/join`, mover.access, { ct: invited.body.ct })
        await call('DELETE', `/rooms/${room.room_id}/members/me`, mover.access)
        const player = players[round % players.length]!
        const sideInvite = await call('POST', `/rooms/${side.room_id}/invite`, owner.access, { user_name: player.username, player_role: 'operator' })
        if (sideInvite.status === 201) await call('DELETE', `/invites/${sideInvite.body.invite_id}`, owner.access)
      }
    })()
    // kill -9 one instance every two seconds, and bring it back on the same port.
    for (let kill = 0; kill < 5; kill++) {
      await Bun.sleep(2000)
      const victim = kill % 3
      const port = Number(new URL(services[victim]!.baseUrl).port)
      services[victim]!.child.kill('SIGKILL')
      await services[victim]!.child.exited
      await Bun.sleep(200)
      services[victim] = await startService(env, port)
      running.push(services[victim]!)
    }
    changing = false
    await changes

    const database = new SQL(env.DATABASE_URL, { max: 1 })
    const logOf = async (stream: string): Promise<Array<[number, string]>> =>
      (await database.unsafe('SELECT seq, type FROM events WHERE stream = $1 ORDER BY seq', [stream])).map((row: { seq: number; type: string }) => [
        Number(row.seq),
        row.type,
      ])
    for (const person of [owner, ...players]) {
      const events = received.get(person.userId)!
      for (const stream of [`user:${person.userId}`, `room:${room.room_id}`]) {
        const expected = await logOf(stream)
        const deadline = Date.now() + 15_000
        const got = () => events.filter((event) => event.stream === stream).map((event) => [event.seq, event.event.type])
        while (got().length < expected.length && Date.now() < deadline) await Bun.sleep(50)
        expect({ stream, events: got() }).toEqual({ stream, events: expected })
        const sent = wire
          .get(person.userId)!
          .filter((frame) => frame.op === 'event' && frame.stream === stream)
          .map((frame) => frame.seq)
        expect(sent).toEqual(expected.map(([seq]) => seq))
      }
    }
    // The clients of the instances killed came back and resumed, some more than once.
    const sessions = [...wire.values()].map((frames) => frames.filter((frame) => frame.op === 'ready').length)
    expect(sessions.filter((count) => count > 1).length).toBeGreaterThanOrEqual(4)
    // Enough happened for the test to mean something.
    expect((await logOf(`room:${room.room_id}`)).length).toBeGreaterThan(40)
    for (const connection of connections) connection.close()
    await database.close()
  }, 90_000)
}

describe.if(onlyOn('postgres', 'the NATS bus (it wakes instances on PostgreSQL)') && natsAvailable)('the NATS bus', () => {
  /** Ten changes to `user`'s account on `service`: ten events on their stream. */
  const tenChanges = async (service: ServiceProcess, user: Session) => {
    for (let i = 0; i < 10; i++) expect((await service.client.put('/users/me', { username: `${user.username}_${i}` }, user.access)).status).toBe(200)
  }
  const exactlyTen = async (socket: Awaited<ReturnType<typeof follower>>) => {
    await socket.until(() => socket.events(socket.userStream).length >= 10, 10_000)
    await Bun.sleep(300)
    expect(socket.events(socket.userStream).map((frame) => frame.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
  }

  test('an instance subscribes only to the streams its sockets follow, and lets them go when the sockets close', async () => {
    const nats = await privateNats()
    const bus = natsBus(nats.url)
    const {
      services: [a, b],
    } = await startInstances(2, bus)
    const owner = await a!.client.register('nats_owner')
    const room = await lobby(a!.client).createRoom(owner)
    const socket = await follower(b!.baseUrl, owner.access)
    await subscribe(socket, `room:${room.room_id}`)
    const followed = [`${bus.NATS_SUBJECT_PREFIX}.events.user.${owner.userId}`, `${bus.NATS_SUBJECT_PREFIX}.events.room.${room.room_id}`]
    const held = (await nats.subscriptions()).filter((subjects) => subjects.some((subject) => subject.startsWith(`${bus.NATS_SUBJECT_PREFIX}.events.`)))
    // B holds the two streams its socket follows; A, with no socket, holds none; nobody takes every event.
    expect(held).toHaveLength(1)
    expect(held[0]!.filter((subject) => subject.startsWith(`${bus.NATS_SUBJECT_PREFIX}.events.`)).sort()).toEqual(followed.sort())
    socket.close()
    const deadline = Date.now() + 5000
    while ((await nats.subscriptions()).flat().some((subject) => followed.includes(subject)) && Date.now() < deadline) await Bun.sleep(50)
    expect((await nats.subscriptions()).flat().filter((subject) => followed.includes(subject))).toEqual([])
    await nats.stop()
  })

  // NATS_LOOK_INTERVAL=60: what arrives comes through the reconnection, not from a look at the log.
  test('NATS stops and starts again while changes go on: the instances read what they missed when they reconnect, and hear the next change at once', async () => {
    const nats = await privateNats()
    const {
      services: [a, b],
    } = await startInstances(2, { ...natsBus(nats.url), NATS_LOOK_INTERVAL: '60' })
    const user = await a!.client.register('nats_restart')
    const socket = await follower(b!.baseUrl, user.access)
    await nats.stop()
    for (let i = 0; i < 9; i++) expect((await a!.client.put('/users/me', { username: `nats_restart_${i}` }, user.access)).status).toBe(200)
    await nats.start()
    await socket.until(() => socket.events(socket.userStream).length === 9, 10_000)
    // Both instances are back on NATS: the next change is heard without the log.
    await Bun.sleep(500)
    const changed = Date.now()
    expect((await a!.client.put('/users/me', { username: 'nats_restart_9' }, user.access)).status).toBe(200)
    await socket.until(() => socket.events(socket.userStream).length >= 10, 10_000)
    expect(Date.now() - changed).toBeLessThan(1000)
    await exactlyTen(socket)
    await nats.stop()
  })

  test('notices that never reach the other instance (an instance killed between commit and publish) are found in the log within two looks', async () => {
    // A publishes to one NATS server, B listens on another: nothing A says reaches B through NATS.
    const [x, y] = await Promise.all([privateNats(), privateNats()])
    const prefix = natsBus().NATS_SUBJECT_PREFIX
    const env = {
      ...TEST_ENV,
      LOG_LEVEL: 'error',
      DATABASE_URL: await freshDatabaseUrl(),
      REALTIME_BUS: 'nats',
      NATS_SUBJECT_PREFIX: prefix,
    }
    const [a, b] = await Promise.all([startService({ ...env, NATS_URL: x.url }), startService({ ...env, NATS_URL: y.url })])
    running.push(a, b)
    const user = await a.client.register('nats_unheard')
    const socket = await follower(b.baseUrl, user.access)
    await tenChanges(a, user)
    const lastCommitted = Date.now()
    await socket.until(() => socket.events(socket.userStream).length >= 10, 10_000)
    // NATS_LOOK_INTERVAL is 1 s: within two looks of the last commit, and a little time.
    expect(Date.now() - lastCommitted).toBeLessThan(2500)
    await exactlyTen(socket)
    await Promise.all([x.stop(), y.stop()])
  })
})
