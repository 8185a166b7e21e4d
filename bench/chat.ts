/**
 * The chat benchmark: `bun run bench:chat`. Against the compiled binary, on SQLite and on
 * PostgreSQL (BENCH_DATABASE_URL): how many messages a second one room of 50 players, and 100 rooms
 * of 10, sustain end to end (sent over the websocket, acknowledged, and received by every player of
 * the room), with the latency from sending to the last receipt; and how long a page of history
 * takes with a million messages stored. Rewrites the "Chat" section of bench/RESULTS.md;
 * `bun bench/chat.ts --flow` measures the sending alone and writes nothing.
 */
import { join } from 'node:path'
import { openDatabase } from '../src/db/database'
import { buildBinary, cpuSeconds, freshPostgresDatabase, machineTicks, quantile, startBinary, writeSection } from './proc'

const WORK = join(import.meta.dir, '.work-chat')
const POSTGRES_URL = Bun.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const RESULTS = join(import.meta.dir, 'RESULTS.md')
const PLAYERS = 50
const SENDERS = 10
const ROOMS = 100
const ROOM_PLAYERS = 10
const SECONDS = 10
const FLOW_ONLY = process.argv.includes('--flow')
const HISTORY = 1_000_000

const BINARY = buildBinary(WORK)

async function instance(port: number, databaseUrl: string) {
  return startBinary(BINARY, port, {
    DATABASE_URL: databaseUrl,
    JWT_SECRET: 'bench-secret-that-is-long-enough-for-hs256',
    AUTH_RATE_LIMIT: '1000000',
    INVITE_RATE_LIMIT: '1000000',
    MESSAGE_RATE_LIMIT: '1000000',
    REALTIME_MESSAGE_RATE: '100000',
    REALTIME_MAX_SOCKETS_PER_ADDRESS: '100000',
    HASH_QUEUE_PER_CLIENT: '100',
    ROOM_MAX_PLAYERS_LIMIT: String(PLAYERS),
    PASSWORD_MEMORY_COST: '19456',
    LOG_LEVEL: 'warn',
  })
}

async function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  const reply = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return reply.json() as Promise<any>
}

/** A room of `size` players, each with a socket following its chat; answers the sockets and the room. */
async function fullRoom(base: string, size: number, tag: string) {
  const players: Array<{ token: string; userId: string; name: string }> = []
  for (let i = 0; i < size; i++) {
    const name = `chat_${tag}_${i}`
    const answer = await call(base, 'POST', '/auth/registrate', undefined, { username: name, password: 'bench-password' })
    if (!answer.access_token) throw new Error(`registering ${name}: ${JSON.stringify(answer)}`)
    players.push({ token: answer.access_token.token, userId: answer.user.user_id, name })
  }
  const owner = players[0]!
  const room = await call(base, 'POST', '/rooms', owner.token, { room_name: 'Bench room', max_players: size })
  for (const player of players.slice(1)) {
    const invitation = await call(base, 'POST', `/rooms/${room.room_id}/invite`, owner.token, { user_name: player.name, player_role: 'operator' })
    await call(base, 'POST', `/rooms/${room.room_id}/join`, player.token, { ct: invitation.ct })
  }
  const sockets = await Promise.all(
    players.map(
      (player) =>
        new Promise<{ socket: WebSocket; onFrame: (handler: (frame: any) => void) => void }>((resolve) => {
          const socket = new WebSocket(`${base.replace('http', 'ws')}/realtime`)
          let handler: (frame: any) => void = () => {}
          socket.onmessage = ({ data }) => {
            const frame = JSON.parse(String(data))
            if (frame.op === 'hello') socket.send(JSON.stringify({ op: 'auth', token: player.token }))
            else if (frame.op === 'ready') socket.send(JSON.stringify({ op: 'subscribe', stream: `chat:${room.room_id}` }))
            else if (frame.op === 'subscribed') resolve({ socket, onFrame: (next) => (handler = next) })
            else handler(frame)
          }
        }),
    ),
  )
  return { sockets, room }
}

/**
 * In each of `rooms` rooms of `size` players, `senders` of them send one message after another for
 * SECONDS; each message is timed until every player of its room has it.
 */
async function throughput(server: { base: string; child: { pid: number } }, rooms: number, size: number, senders: number) {
  const { base } = server
  const tag = `${rooms}x${size}`
  const filled: Array<Awaited<ReturnType<typeof fullRoom>>> = []
  for (let first = 0; first < rooms; first += 10)
    filled.push(...(await Promise.all(Array.from({ length: Math.min(10, rooms - first) }, (_, i) => fullRoom(base, size, `${tag}_${first + i}`)))))
  const sentAt = new Map<string, number>()
  const receipts = new Map<string, number>()
  const latencies: number[] = []
  const acknowledged = new Map<WebSocket, () => void>()
  for (const { sockets } of filled)
    for (const { socket, onFrame } of sockets)
      onFrame((frame) => {
        if (frame.op === 'sent') return acknowledged.get(socket)?.()
        if (frame.op !== 'event' || frame.event.type !== 'message_posted') return
        const id = frame.event.client_id
        const count = (receipts.get(id) ?? 0) + 1
        receipts.set(id, count)
        if (count === size) {
          latencies.push(performance.now() - sentAt.get(id)!)
          receipts.delete(id)
        }
      })
  const deadline = performance.now() + SECONDS * 1000
  const [cpuBefore, machineBefore] = [cpuSeconds(server.child.pid), machineTicks()]
  let sent = 0
  await Promise.all(
    filled.flatMap(({ sockets, room }, roomIndex) =>
      sockets.slice(0, senders).map(async ({ socket }, sender) => {
        for (let n = 0; performance.now() < deadline; n++) {
          const clientId = `r${roomIndex}-s${sender}-${n}`
          sentAt.set(clientId, performance.now())
          const ack = new Promise<void>((resolve) => acknowledged.set(socket, resolve))
          socket.send(JSON.stringify({ op: 'send', room_id: room.room_id, body: `message ${n} from ${sender}`, client_id: clientId }))
          await ack
          sent++
        }
      }),
    ),
  )
  const [cpuAfter, machineAfter] = [cpuSeconds(server.child.pid), machineTicks()]
  await Bun.sleep(500)
  for (const { sockets } of filled) for (const { socket } of sockets) socket.close()
  return {
    perSecond: latencies.length / SECONDS,
    sent,
    delivered: latencies.length,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    cpuPerMessage: ((cpuAfter - cpuBefore) / sent) * 1e6,
    idle: (machineAfter.idle - machineBefore.idle) / (machineAfter.total - machineBefore.total),
  }
}

const usage = ({ cpuPerMessage, idle }: { cpuPerMessage: number; idle: number }) =>
  `service CPU ${cpuPerMessage.toFixed(0)} µs a message, machine ${(idle * 100).toFixed(0)} % idle`

/** A million messages in one room, written straight to the store; then pages of history timed over HTTP. */
async function history(base: string, databaseUrl: string) {
  const reader = await call(base, 'POST', '/auth/registrate', undefined, { username: 'history_reader', password: 'bench-password' })
  const room = await call(base, 'POST', '/rooms', reader.access_token.token, { room_name: 'A long history' })
  const db = await openDatabase(databaseUrl, 2)
  const started = performance.now()
  for (let first = 1; first <= HISTORY; first += 5000) {
    await db.transaction(async (tx) => {
      const rows = Array.from({ length: 5000 }, (_, i) => first + i)
      const values = rows.map(
        (_, i) => `($${i * 3 + 1}, $${i * 3 + 2}, $${i * 3 + 3}, '${room.room_id}', '${reader.user.user_id}', 'history line', '2026-11-23T00:00:00.000Z')`,
      )
      await tx.run(
        `INSERT INTO messages (message_id, seq, client_id, room_id, author_id, body, created_at) VALUES ${values.join(', ')}`,
        rows.flatMap((seq) => [Bun.randomUUIDv7(), seq, null]),
      )
    })
  }
  await db.close()
  console.log(`  ${HISTORY} messages written in ${((performance.now() - started) / 1000).toFixed(0)} s`)
  const time = async (path: string) => {
    const times: number[] = []
    for (let i = 0; i < 200; i++) {
      const start = performance.now()
      const reply = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${reader.access_token.token}` } })
      await reply.arrayBuffer()
      times.push(performance.now() - start)
    }
    return { p50: quantile(times, 0.5), p99: quantile(times, 0.99) }
  }
  const path = `/rooms/${room.room_id}/messages?limit=50`
  return {
    newest: await time(path),
    deep: await time(`${path}&before=m${(HISTORY / 2).toString(36)}`),
    forward: await time(`${path}&after=m${(1000).toString(36)}`),
  }
}

const report: string[] = []
const stores: Array<[string, () => Promise<string>]> = [
  ['SQLite', async () => `sqlite:${join(WORK, 'chat.sqlite')}`],
  [
    'PostgreSQL',
    () => freshPostgresDatabase(POSTGRES_URL, 'sgw_bench_chat'),
  ],
]
for (const [index, [store, database]] of stores.entries()) {
  console.log(`== ${store}: a room of ${PLAYERS}, ${SENDERS} of them sending for ${SECONDS} s`)
  const url = await database()
  const server = await instance(4601 + index, url)
  const flow = await throughput(server, 1, PLAYERS, SENDERS)
  console.log(`  ${flow.perSecond.toFixed(0)} messages/s to all ${PLAYERS}; send to last receipt p50 ${flow.p50.toFixed(1)} ms, p99 ${flow.p99.toFixed(1)} ms; ${usage(flow)}`)
  console.log(`== ${store}: ${ROOMS} rooms of ${ROOM_PLAYERS}, one player of each sending for ${SECONDS} s`)
  const rooms = await throughput(server, ROOMS, ROOM_PLAYERS, 1)
  console.log(`  ${rooms.perSecond.toFixed(0)} messages/s; send to last receipt p50 ${rooms.p50.toFixed(1)} ms, p99 ${rooms.p99.toFixed(1)} ms; ${usage(rooms)}`)
  if (FLOW_ONLY) {
    server.child.kill()
    continue
  }
  console.log(`== ${store}: history with ${HISTORY.toLocaleString('en')} messages`)
  const pages = await history(server.base, url)
  console.log(`  newest page p99 ${pages.newest.p99.toFixed(1)} ms, a page in the middle p99 ${pages.deep.p99.toFixed(1)} ms`)
  server.child.kill()
  report.push(
    `### ${store}`,
    '',
    '| measure | p50 | p99 | result |',
    '| --- | --- | --- | --- |',
    `| ${SENDERS} of ${PLAYERS} players sending over the websocket, each message until all ${PLAYERS} have it | ${flow.p50.toFixed(1)} ms | ${flow.p99.toFixed(1)} ms | ${flow.perSecond.toFixed(0)} messages/s (${(flow.perSecond * PLAYERS).toFixed(0)} deliveries/s); ${usage(flow)} |`,
    `| ${ROOMS} rooms of ${ROOM_PLAYERS}, one player of each sending, each message until all ${ROOM_PLAYERS} of its room have it | ${rooms.p50.toFixed(1)} ms | ${rooms.p99.toFixed(1)} ms | ${rooms.perSecond.toFixed(0)} messages/s (${(rooms.perSecond * ROOM_PLAYERS).toFixed(0)} deliveries/s); ${usage(rooms)} |`,
    `| newest page of 50, ${HISTORY.toLocaleString('en')} messages stored | ${pages.newest.p50.toFixed(1)} ms | ${pages.newest.p99.toFixed(1)} ms | |`,
    `| page of 50 before the middle | ${pages.deep.p50.toFixed(1)} ms | ${pages.deep.p99.toFixed(1)} ms | |`,
    `| page of 50 after message 1,000 | ${pages.forward.p50.toFixed(1)} ms | ${pages.forward.p99.toFixed(1)} ms | |`,
    '',
  )
}

if (!FLOW_ONLY)
  writeSection(RESULTS, 'Chat', [
    `\`bun run bench:chat\`, ${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores; the players' clients (${PLAYERS}, then ${ROOMS * ROOM_PLAYERS}) run on the same machine. Closed loop: each sender waits for its acknowledgement before the next message.`,
    '',
    ...report,
  ])
process.exit(0)
