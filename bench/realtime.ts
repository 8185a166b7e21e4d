/**
 * The realtime benchmark: `bun run bench:realtime`. Builds the binary and measures, against it:
 * fan-out CPU per delivery (and the same fan-out through Socket.IO 4.8 on Node, the peer to beat),
 * change-to-client latency across two instances on PostgreSQL, and the memory of 15,000 idle
 * authenticated sockets (the resume storm is bench/resume.ts). Rewrites the "Realtime" section of
 * bench/RESULTS.md. Run it on a quiet machine: it loads both cores.
 */
import { join } from 'node:path'
import { SQL } from 'bun'
import { buildBinary, cpuSeconds, quantile, rssOf, startBinary, waitFor, writeSection } from './proc'

const WORK = join(import.meta.dir, '.work-realtime')
const POSTGRES_URL = Bun.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const RESULTS = join(import.meta.dir, 'RESULTS.md')
const FANOUT_SOCKETS = 1000
const FANOUT_EVENTS = 2000

const BINARY = buildBinary(WORK)

const report: string[] = []

async function instance(port: number, databaseUrl: string) {
  return startBinary(BINARY, port, {
    DATABASE_URL: databaseUrl,
    JWT_SECRET: 'bench-secret-that-is-long-enough-for-hs256',
    ACCESS_TOKEN_TTL: '3600',
    // One load generator on one address, with many sockets per account.
    AUTH_RATE_LIMIT: '1000000',
    REALTIME_MAX_SOCKETS_PER_USER: '10000',
    REALTIME_MAX_SOCKETS_PER_ADDRESS: '1000000',
    PASSWORD_MEMORY_COST: '19456',
    LOG_LEVEL: 'warn',
  })
}

async function register(base: string, username: string): Promise<{ token: string; userId: string }> {
  const reply = await fetch(`${base}/auth/registrate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'bench-password' }),
  })
  const body = (await reply.json()) as { access_token: { token: string }; user: { user_id: string } }
  return { token: body.access_token.token, userId: body.user.user_id }
}

const rename = (base: string, token: string, username: string) =>
  fetch(`${base}/users/me`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ username }),
  })

/** A bare client: authenticates, subscribes, counts events and keeps the last number of each stream. */
class Client {
  readonly socket: WebSocket
  readonly last = new Map<string, number>()
  events = 0
  subscribed = 0
  onEvent?: () => void

  constructor(base: string, token: string, subscriptions: Array<{ stream: string; after?: number }>, onSubscribed?: () => void) {
    this.socket = new WebSocket(`${base.replace('http', 'ws')}/realtime`)
    this.socket.onmessage = (message) => {
      const frame = JSON.parse(String(message.data))
      if (frame.op === 'hello') {
        this.socket.send(JSON.stringify({ op: 'auth', token }))
        for (const subscription of subscriptions) this.socket.send(JSON.stringify({ op: 'subscribe', ...subscription }))
      } else if (frame.op === 'event') {
        this.events++
        this.last.set(frame.stream, frame.seq)
        this.onEvent?.()
      } else if (frame.op === 'subscribed') {
        this.last.set(frame.stream, frame.last_seq)
        if (++this.subscribed === subscriptions.length) onSubscribed?.()
      }
    }
  }
}

/** Opens `count` clients, at most `wave` connecting at once; resolves when all are subscribed. */
async function openClients(count: number, wave: number, make: (index: number, done: () => void) => Client): Promise<Client[]> {
  const clients: Client[] = []
  for (let start = 0; start < count; start += wave) {
    const batch = Math.min(wave, count - start)
    await new Promise<void>((resolve) => {
      let pending = batch
      for (let index = start; index < start + batch; index++) clients.push(make(index, () => --pending === 0 && resolve()))
    })
  }
  return clients
}

const until = async (check: () => boolean, ms = 120_000) => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await Bun.sleep(5)
  }
}

// 1. Fan-out: the server's CPU for FANOUT_EVENTS events, with and without FANOUT_SOCKETS subscribers.
{
  console.log(`== fan-out: ${FANOUT_EVENTS} events to ${FANOUT_SOCKETS} sockets`)
  const { child, base } = await instance(4501, `sqlite:${join(WORK, 'fanout.sqlite')}`)
  const user = await register(base, 'fanout_user')
  const renames = async (from: number) => {
    for (let i = 0; i < FANOUT_EVENTS; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => rename(base, user.token, `fanout_${from + i + j}`)))
  }
  await renames(0)
  let before = cpuSeconds(child.pid)
  await renames(100_000)
  const alone = cpuSeconds(child.pid) - before
  const clients = await openClients(FANOUT_SOCKETS, 250, (_, done) => new Client(base, user.token, [{ stream: 'user' }], done))
  let received = 0
  for (const client of clients) client.onEvent = () => received++
  before = cpuSeconds(child.pid)
  await renames(200_000)
  await until(() => received === FANOUT_EVENTS * FANOUT_SOCKETS)
  const withSockets = cpuSeconds(child.pid) - before
  const perDelivery = ((withSockets - alone) * 1e6) / (FANOUT_EVENTS * FANOUT_SOCKETS)
  console.log(`  ${alone.toFixed(2)} s CPU alone, ${withSockets.toFixed(2)} s with sockets: ${perDelivery.toFixed(2)} us per delivery`)
  for (const client of clients) client.socket.close()
  child.kill()

  console.log('== the same fan-out through Socket.IO 4.8 on Node')
  const server = Bun.spawn(['node', join(import.meta.dir, 'socketio-server.mjs')], { env: { PORT: '4510' }, stdout: 'ignore', stderr: 'inherit' })
  process.on('exit', () => server.kill('SIGKILL'))
  await waitFor('http://127.0.0.1:4510/ready')
  const emit = () => fetch(`http://127.0.0.1:4510/emit?count=${FANOUT_EVENTS}`).then((reply) => reply.text())
  await emit()
  before = cpuSeconds(server.pid)
  await emit()
  const ioAlone = cpuSeconds(server.pid) - before
  const { io } = await import('socket.io-client')
  let ioReceived = 0
  let ioConnected = 0
  const ioClients = Array.from({ length: FANOUT_SOCKETS }, () => {
    const socket = io('http://127.0.0.1:4510', { transports: ['websocket'] })
    socket.on('connect', () => ioConnected++)
    socket.on('account_changed', () => ioReceived++)
    return socket
  })
  await until(() => ioConnected === FANOUT_SOCKETS)
  await Bun.sleep(500)
  before = cpuSeconds(server.pid)
  await emit()
  await until(() => ioReceived === FANOUT_EVENTS * FANOUT_SOCKETS)
  const ioWithSockets = cpuSeconds(server.pid) - before
  const ioPerDelivery = ((ioWithSockets - ioAlone) * 1e6) / (FANOUT_EVENTS * FANOUT_SOCKETS)
  console.log(`  Socket.IO: ${ioPerDelivery.toFixed(2)} us per delivery`)
  for (const socket of ioClients) socket.close()
  server.kill()
  report.push(
    '### Fan-out: server CPU per delivery',
    '',
    `${FANOUT_EVENTS} events (a rename each, about 220 bytes a frame) to ${FANOUT_SOCKETS} sockets following one stream; the server's CPU (from /proc)`,
    'with the sockets, minus the same changes without them, over the deliveries.',
    '',
    '| server | CPU per delivery | target |',
    '| --- | --- | --- |',
    `| this gateway (Bun topics, uncompressed) | ${perDelivery.toFixed(2)} µs | ≤ 1 µs |`,
    `| Socket.IO 4.8 on Node ${Bun.spawnSync(['node', '--version']).stdout.toString().trim()} (same machine, websocket transport) | ${ioPerDelivery.toFixed(2)} µs | the peer to beat |`,
    '',
  )
}

// 2. Change-to-client latency across instances: a rename on A, its event on a socket of B.
{
  console.log('== change-to-client across two instances on PostgreSQL')
  const name = `sgw_bench_rt_${Date.now()}`
  const admin = new SQL(POSTGRES_URL, { max: 1 })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${name}`
  const a = await instance(4502, url.toString())
  const b = await instance(4503, url.toString())
  const user = await register(a.base, 'latency_user')
  let arrived = 0
  const [client] = await openClients(1, 1, (_, done) => new Client(b.base, user.token, [{ stream: 'user' }], done))
  client!.onEvent = () => (arrived = performance.now())
  const latencies: number[] = []
  for (let i = 0; i < 1000; i++) {
    const seen = client!.events
    const start = performance.now()
    await rename(a.base, user.token, `latency_${i}`)
    await until(() => client!.events > seen)
    latencies.push(arrived - start)
  }
  const metrics = await (await fetch(`${b.base}/metrics`)).text()
  const buckets = [...metrics.matchAll(/realtime_delivery_seconds_bucket\{le="([^"]+)"\} (\d+)/g)].map(([, le, count]) => [le!, Number(count)] as const)
  const total = buckets.at(-1)![1]
  const p99Bucket = buckets.find(([, count]) => count >= total * 0.99)![0]
  console.log(`  p50 ${quantile(latencies, 0.5).toFixed(2)} ms, p99 ${quantile(latencies, 0.99).toFixed(2)} ms; server write-to-send p99 <= ${p99Bucket} s`)
  client!.socket.close()
  a.child.kill()
  b.child.kill()
  await Promise.all([a.child.exited, b.child.exited])
  await admin.unsafe(`DROP DATABASE ${name} WITH (FORCE)`)
  await admin.close()
  report.push(
    '### Across instances: change to client',
    '',
    'Two instances on one PostgreSQL; 1,000 renames sent one after another to A, each timed from sending the request to its event',
    "arriving on a socket of B (so it includes the HTTP request, the commit, the NOTIFY and the delivery). B's own histogram",
    'of write-to-send (from the event written, just before commit, to its frame going out) is read from its /metrics.',
    '',
    '| measure | p50 | p99 | target |',
    '| --- | --- | --- | --- |',
    `| request on A to event on B's socket | ${quantile(latencies, 0.5).toFixed(2)} ms | ${quantile(latencies, 0.99).toFixed(2)} ms | p99 < 30 ms |`,
    `| B's realtime_delivery_seconds (buckets) | | ≤ ${Number(p99Bucket) * 1000} ms | |`,
    '',
  )
}

// 3. 15,000 idle authenticated sockets.
{
  const USERS = 150
  const PER_USER = 100
  console.log(`== ${USERS * PER_USER} idle authenticated sockets, each in two streams`)
  const { child, base } = await instance(4504, `sqlite:${join(WORK, 'idle.sqlite')}`)
  const users: Array<{ token: string; userId: string; roomId: string }> = []
  for (let i = 0; i < USERS; i++) {
    const user = await register(base, `idle_user_${i}`)
    const room = await fetch(`${base}/rooms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ room_name: `Idle ${i}` }),
    }).then((reply) => reply.json() as Promise<{ room_id: string }>)
    users.push({ ...user, roomId: room.room_id })
  }
  await Bun.sleep(2000)
  const rssBefore = rssOf(child.pid)
  const streamsOf = (user: (typeof users)[number]) => [{ stream: 'user' }, { stream: `room:${user.roomId}` }]
  const clients = await openClients(
    USERS * PER_USER,
    500,
    (index, done) => new Client(base, users[index % USERS]!.token, streamsOf(users[index % USERS]!), done),
  )
  await Bun.sleep(3000)
  const rssAfter = rssOf(child.pid)
  console.log(`  RSS ${rssBefore.toFixed(0)} MB before, ${rssAfter.toFixed(0)} MB with ${clients.length} sockets`)

  for (const client of clients) client.socket.close()
  child.kill()
  report.push(
    '### Idle sockets (SQLite, one instance)',
    '',
    `${USERS} users with ${PER_USER} sockets each, every socket authenticated and following its user's stream and a room's.`,
    '(The resume storm is `bun run bench:resume`, in its own section.)',
    '',
    '| measure | result | target |',
    '| --- | --- | --- |',
    `| RSS with ${(USERS * PER_USER).toLocaleString('en')} idle sockets | ${rssAfter.toFixed(0)} MB (${rssBefore.toFixed(0)} MB before them) | < 150 MB |`,
    '',
  )
}

writeSection(RESULTS, 'Realtime', [
  `\`bun run bench:realtime\`, ${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores; the load generator runs on the same machine.`,
  '',
  ...report,
])
process.exit(0)
