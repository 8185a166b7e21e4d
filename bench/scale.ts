/**
 * The scale simulation: `bun run bench:scale`. SCALE_INSTANCES instances of the compiled service
 * (default 8) on one PostgreSQL, woken by SCALE_BUS (`nats`, the default, or `postgres`), hold
 * SCALE_PLAYERS authenticated sockets (default 100,000), spread over the instances by their players,
 * who run in processes of 10,000 on the same machine. Every player follows their user's stream; one
 * in ten plays in a room of ten and follows the room and its chat too. A steady mix runs over REST:
 * chat at SCALE_CHAT_RATE messages a second, and SCALE_CHURN_RATE times a second an owner invites an
 * idle player, who joins and leaves three seconds later. Then one instance is killed (kill -9) and
 * its players resume on the others. Measured: memory per socket, CPU per delivery, POST-to-socket
 * latency of chat messages, the time until every dropped player has resumed, and exactness: every
 * stream of every player equals the log (each event once, in order, up to the last). Rewrites the
 * "Scale: <engine>" section of bench/RESULTS.md.
 *
 * A process here may hold at most 20,000 files (`ulimit -Hn`): one instance holds at most about
 * 19,900 sockets, so the players of a killed instance must fit on the others.
 */
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { openDatabase } from '../src/db/database'
import { migrate } from '../src/db/migrations'
import { accessTokenSigner } from '../src/modules/sessions/tokens'
import { buildBinary, cpuSeconds, freshPostgresDatabase, jsonLines, nextLine, quantile, rssOf, startBinary, waitFor, writeSection } from './proc'
import { insertMany } from './seed'

const PLAYERS = Number(Bun.env.SCALE_PLAYERS ?? 100_000)
const INSTANCES = Number(Bun.env.SCALE_INSTANCES ?? 8)
const BUS = Bun.env.SCALE_BUS === 'postgres' ? 'postgres' : 'nats'
const CHAT_RATE = Number(Bun.env.SCALE_CHAT_RATE ?? 100)
const CHURN_RATE = Number(Bun.env.SCALE_CHURN_RATE ?? 10)
/** PostgreSQL connections per instance: 8 of them and their listeners stay under its 100. */
const POOL = Number(Bun.env.SCALE_POOL ?? 8)
const POSTGRES_URL = Bun.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const NATS_PORT = 4700
const NATS_MONITOR = 4701
const ROOM_SIZE = 10
const ACTIVE_SHARE = 0.1
const PLAYERS_PER_PROCESS = 10_000
/** Players of a process connecting at once: 8 instances on two cores take about this many without a queue building up. */
const WAVE = Number(Bun.env.SCALE_WAVE ?? 100)
/** Seconds of load before the kill (the window for CPU per delivery), and after it. */
const STEADY = 20
const AFTER_KILL = 20
const BASE_PORT = 4600
const SECRET = 'bench-secret-that-is-long-enough-for-hs256'
const WORK = join(import.meta.dir, '.work-scale')
const RESULTS = join(import.meta.dir, 'RESULTS.md')

interface Account {
  token: string
  userId: string
  username: string
  roomId?: string
  home: number
}

const started = performance.now()
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`
const BINARY = buildBinary(WORK)

/** The players written straight into a fresh database: a session each, one in ten seated ten to a room (two seats left free). */
async function seedPlayers(url: string): Promise<{ accounts: Account[]; rooms: Array<{ roomId: string; owner: Account }> }> {
  const db = await openDatabase(url, 1)
  await migrate(db)
  const now = new Date().toISOString()
  const hash = await Bun.password.hash('bench-password', { algorithm: 'argon2id', memoryCost: 4096, timeCost: 1 })
  const signer = accessTokenSigner({ secret: SECRET, algorithm: 'HS256', issuer: 'sim-gateway', audience: 'sim-gateway' })
  const exp = Math.floor(Date.now() / 1000) + 7200
  const active = Math.floor(PLAYERS * ACTIVE_SHARE)
  const sessions: string[] = []
  const accounts: Account[] = []
  for (let index = 0; index < PLAYERS; index++) {
    const userId = Bun.randomUUIDv7()
    sessions.push(Bun.randomUUIDv7())
    const token = await signer.sign({ sub: userId, sid: sessions[index]!, jti: crypto.randomUUID(), exp })
    accounts.push({ token, userId, username: `scale_${index}`, home: index % INSTANCES })
  }
  const rooms: Array<{ roomId: string; owner: Account }> = []
  for (let start = 0; start < active; start += ROOM_SIZE) {
    const room = { roomId: Bun.randomUUIDv7(), owner: accounts[start]! }
    for (const account of accounts.slice(start, start + ROOM_SIZE)) account.roomId = room.roomId
    rooms.push(room)
  }
  await insertMany(db, 'users (user_id, username, password_hash, user_role, is_active, created_at, updated_at)', accounts.map((a) => [a.userId, a.username, hash, 'user', true, now, now]))
  await insertMany(db, 'sessions (session_id, user_id, created_at, expires_at)', accounts.map((a, i) => [sessions[i]!, a.userId, now, '2099-01-01T00:00:00.000Z']))
  await insertMany(
    db,
    'rooms (room_id, room_name, owner_id, max_players, is_closed, created_at, updated_at)',
    rooms.map((room, i) => [room.roomId, `Room ${i}`, room.owner.userId, ROOM_SIZE + 2, false, now, now]),
  )
  await insertMany(db, 'room_players (room_id, user_id, game_role, joined_at)', accounts.filter((a) => a.roomId).map((a) => [a.roomId!, a.userId, 'crew', now]))
  await db.run('ANALYZE')
  await db.close()
  return { accounts, rooms }
}

console.log(`== ${PLAYERS.toLocaleString('en')} players on ${INSTANCES} instances, bus ${BUS} (${elapsed()})`)
const databaseUrl = await freshPostgresDatabase(POSTGRES_URL, 'bench_scale')
const { accounts, rooms } = await seedPlayers(databaseUrl)
console.log(`  seeded ${accounts.length.toLocaleString('en')} players and ${rooms.length} rooms, each player's token signed (${elapsed()})`)

// A NATS server of its own, whose monitoring port tells how many notices each instance received.
const natsServer = BUS === 'nats' ? Bun.spawn([Bun.which('nats-server') ?? '/usr/sbin/nats-server', '-a', '127.0.0.1', '-p', String(NATS_PORT), '-m', String(NATS_MONITOR)], { stdout: 'ignore', stderr: 'ignore' }) : undefined
process.on('exit', () => natsServer?.kill('SIGKILL'))
if (natsServer) await waitFor(`http://127.0.0.1:${NATS_MONITOR}/healthz`)
/** Messages NATS took in (notices, signals, heartbeats) and handed to the instances, in all. */
async function natsTraffic(): Promise<{ in: number; out: number }> {
  if (!natsServer) return { in: 0, out: 0 }
  const connections = ((await (await fetch(`http://127.0.0.1:${NATS_MONITOR}/connz`)).json()) as { connections: Array<{ in_msgs: number; out_msgs: number }> }).connections
  return { in: connections.reduce((sum, c) => sum + c.in_msgs, 0), out: connections.reduce((sum, c) => sum + c.out_msgs, 0) }
}

const env = {
  DATABASE_URL: databaseUrl,
  DATABASE_POOL_SIZE: String(POOL),
  JWT_SECRET: SECRET,
  REALTIME_BUS: BUS,
  NATS_URL: `nats://127.0.0.1:${NATS_PORT}`,
  NATS_SUBJECT_PREFIX: `bench_${Date.now()}`,
  HOST: '0.0.0.0',
  // Every player comes from this machine's address.
  REALTIME_MAX_SOCKETS_PER_ADDRESS: '1000000',
  LOG_LEVEL: 'warn',
}
const instances = await Promise.all(Array.from({ length: INSTANCES }, (_, i) => startBinary(BINARY, BASE_PORT + i, env)))
const idleRss = instances.reduce((sum, { child }) => sum + rssOf(child.pid), 0)
const killed = new Set<number>()

const processes: Array<{ child: Subprocess<'pipe', 'pipe', 'inherit'>; lines: AsyncGenerator<Record<string, unknown>> }> = []
for (let start = 0; start < PLAYERS; start += PLAYERS_PER_PROCESS) {
  const planFile = join(WORK, `players-${start}.json`)
  await Bun.write(planFile, JSON.stringify({ ports: instances.map((_, i) => BASE_PORT + i), players: accounts.slice(start, start + PLAYERS_PER_PROCESS) }))
  const child = Bun.spawn([process.execPath, join(import.meta.dir, 'scale-clients.ts'), planFile], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' })
  processes.push({ child, lines: jsonLines(child.stdout) })
}
/** Every player process told `command`; answers each one's line. */
async function ask<Answer>(command: string): Promise<Answer[]> {
  for (const { child } of processes) {
    child.stdin.write(`${command}\n`)
    child.stdin.flush()
  }
  return (await Promise.all(processes.map(({ lines }) => nextLine(lines)))) as Answer[]
}

const connectStarted = performance.now()
await ask(`connect ${WAVE}`)
const connectSeconds = (performance.now() - connectStarted) / 1000
const rssAfter = instances.reduce((sum, { child }) => sum + rssOf(child.pid), 0)
const perSocketKb = ((rssAfter - idleRss) * 1024) / PLAYERS
const watcher = await openDatabase(databaseUrl, 1)
/** The PostgreSQL connections the instances hold (this one left out). */
const connectionsNow = async () => Number((await watcher.get<{ n: number }>('SELECT count(*) - 1 AS n FROM pg_stat_activity WHERE datname = current_database()'))!.n)
const connectionsAfterConnect = await connectionsNow()
console.log(`  ${PLAYERS.toLocaleString('en')} sockets connected and subscribed in ${connectSeconds.toFixed(1)} s; instances' RSS ${idleRss.toFixed(0)} MB idle, ${rssAfter.toFixed(0)} MB now (${elapsed()})`)

let turn = 0
/** A REST call to a live instance, another one if it dies under it. */
async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const live = instances.filter((_, i) => !killed.has(i))
    const target = live[turn++ % live.length]!
    try {
      const reply = await fetch(`${target.base}${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return { status: reply.status, body: await reply.json().catch(() => undefined) }
    } catch {
      await Bun.sleep(20)
    }
  }
  throw new Error(`${method} ${path}: no instance answered`)
}

const calls = { messages: 0, churns: 0, refused: 0 }
/** Refused calls by what and status, such as `join 409`: a seat taken by another churn, or an instance that died under the call. */
const refusals = new Map<string, number>()
const refused = (what: string, status: number) => {
  calls.refused++
  refusals.set(`${what} ${status}`, (refusals.get(`${what} ${status}`) ?? 0) + 1)
}
const members = accounts.filter((account) => account.roomId)
const idle = accounts.filter((account) => !account.roomId)
let loading = true
const inFlight = new Set<Promise<unknown>>()
const track = (work: Promise<unknown>) => {
  inFlight.add(work)
  void work.finally(() => inFlight.delete(work))
}
const chatOnce = async () => {
  const author = members[Math.floor(Math.random() * members.length)]!
  // With a client_id: a POST tried again on another instance (its first died under it) writes once.
  const reply = await call('POST', `/rooms/${author.roomId}/messages`, author.token, { body: `t=${Date.now()}`, client_id: crypto.randomUUID() })
  if (reply.status === 201 || reply.status === 200) calls.messages++
  else refused('message', reply.status)
}
let nextIdle = 0
const churnOnce = async () => {
  const room = rooms[Math.floor(Math.random() * rooms.length)]!
  const guest = idle[nextIdle++ % idle.length]!
  const invited = await call('POST', `/rooms/${room.roomId}/invite`, room.owner.token, { user_name: guest.username, player_role: 'observer' })
  if (invited.status !== 201) return refused('invite', invited.status)
  const joined = await call('POST', `/rooms/${room.roomId}/join`, guest.token, { ct: invited.body.ct })
  if (joined.status !== 200) return refused('join', joined.status)
  await Bun.sleep(3000)
  const left = await call('DELETE', `/rooms/${room.roomId}/members/me`, guest.token)
  if (left.status === 200) calls.churns++
  else refused('leave', left.status)
}
// Every 50 ms a twentieth of a second's messages and churn, spread evenly (fractions carried over).
let owedMessages = 0
let owedChurns = 0
const load = setInterval(() => {
  if (!loading) return
  owedMessages += CHAT_RATE / 20
  owedChurns += CHURN_RATE / 20
  for (; owedMessages >= 1; owedMessages--) track(chatOnce())
  for (; owedChurns >= 1; owedChurns--) track(churnOnce())
}, 50)

/** CPU seconds of every PostgreSQL process on the machine (the server and its backends). */
const postgresCpu = () =>
  Bun.spawnSync(['pgrep', '-x', 'postgres']).stdout.toString().trim().split('\n').filter(Boolean).reduce((sum, pid) => {
    try {
      return sum + cpuSeconds(Number(pid))
    } catch {
      return sum // a backend that ended meanwhile
    }
  }, 0)
const cpuOfLive = () => instances.reduce((sum, { child }, i) => sum + (killed.has(i) ? 0 : cpuSeconds(child.pid)), 0)
const receivedNow = async () => (await ask<{ received: number }>('count')).reduce((sum, { received }) => sum + received, 0)
await Bun.sleep(3000)
const [cpu0, received0, at0, nats0, pg0] = [cpuOfLive(), await receivedNow(), performance.now(), await natsTraffic(), postgresCpu()]
await Bun.sleep(STEADY * 1000)
const [cpu1, received1, at1, nats1, pg1] = [cpuOfLive(), await receivedNow(), performance.now(), await natsTraffic(), postgresCpu()]
const connectionsUnderLoad = await connectionsNow()
const windowSeconds = (at1 - at0) / 1000
const deliveries = received1 - received0
const cpuPerDelivery = ((cpu1 - cpu0) * 1e6) / deliveries
console.log(
  `  steady: ${(deliveries / windowSeconds).toFixed(0)} deliveries/s, instances' CPU ${((cpu1 - cpu0) / windowSeconds).toFixed(2)} cores, PostgreSQL's ${((pg1 - pg0) / windowSeconds).toFixed(2)}, ${cpuPerDelivery.toFixed(0)} µs of CPU a delivery (all their work included) (${elapsed()})`,
)

const victim = 0
const killAt = performance.timeOrigin + performance.now()
instances[victim]!.child.kill('SIGKILL')
killed.add(victim)
console.log(`  killed instance ${victim} (kill -9), its players resume elsewhere (${elapsed()})`)
await Bun.sleep(AFTER_KILL * 1000)
loading = false
clearInterval(load)
await Promise.all(inFlight)
// Every dropped player back (two minutes at most), then long enough for the last notices and two looks at the log (NATS_LOOK_INTERVAL).
const resumeDeadline = performance.now() + 120_000
for (;;) {
  const counts = await ask<{ dropped: number; resumed: number }>('resumed')
  if (counts.every(({ dropped, resumed }) => dropped === resumed) || performance.now() > resumeDeadline) break
  await Bun.sleep(1000)
}
await Bun.sleep(3000)

const reports = await ask<{ latencies: Array<[number, number]>; resumes: Array<{ droppedAt: number; resumedAt?: number }> }>('report')
const latencies = reports.flatMap((report) => report.latencies)
const steadyLatencies = latencies.filter(([at]) => at < killAt).map(([, ms]) => ms)
const allLatencies = latencies.map(([, ms]) => ms)
const refusedList = [...refusals].map(([what, count]) => `${count} ${what}`).join(', ') || 'none'
const resumes = reports.flatMap((report) => report.resumes)
const resumed = resumes.filter((resume) => resume.resumedAt !== undefined)
const allResumedIn = resumed.length > 0 ? (Math.max(...resumed.map((resume) => resume.resumedAt!)) - killAt) / 1000 : Number.NaN

const heads = Object.fromEntries((await watcher.all<{ stream: string; last_seq: number }>('SELECT stream, last_seq FROM event_streams')).map((row) => [row.stream, Number(row.last_seq)]))
await watcher.close()
const headsFile = join(WORK, 'heads.json')
await Bun.write(headsFile, JSON.stringify(heads))
const verdicts = await ask<{ exact: number; players: number; failures: string[] }>(`verify ${headsFile}`)
const exact = verdicts.reduce((sum, verdict) => sum + verdict.exact, 0)
const failures = verdicts.flatMap((verdict) => verdict.failures)
const latency = (values: number[], q: number) => quantile(values, q).toFixed(0)
console.log(`  ${calls.messages} messages, ${calls.churns} invite-join-leave rounds, ${calls.refused} calls refused (${refusedList}); latency POST to socket p50 ${latency(steadyLatencies, 0.5)} ms, p99 ${latency(steadyLatencies, 0.99)} ms before the kill, p99 ${latency(allLatencies, 0.99)} ms in all`)
console.log(`  ${resumes.length} players dropped, ${resumed.length} resumed, the last ${allResumedIn.toFixed(1)} s after the kill`)
console.log(`  exact: ${exact.toLocaleString('en')} of ${PLAYERS.toLocaleString('en')} players${failures.length ? `; for example ${failures.join('; ')}` : ''} (${elapsed()})`)

await ask('exit').catch(() => {})
for (const [i, { child }] of instances.entries()) if (!killed.has(i)) child.kill('SIGTERM')

writeSection(RESULTS, `Scale: ${BUS === 'nats' ? 'NATS' : 'LISTEN/NOTIFY'}`, [
  `\`${BUS === 'nats' ? '' : 'SCALE_BUS=postgres '}bun run bench:scale\`, ${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores, the players' processes, PostgreSQL${BUS === 'nats' ? ' and NATS' : ''} on the same machine; ${(
    (performance.now() - started) /
    60_000
  ).toFixed(1)} minutes in all.`,
  '',
  `${INSTANCES} instances (the compiled binary, DATABASE_POOL_SIZE=${POOL}) on one PostgreSQL, woken by ${BUS === 'nats' ? 'NATS' : 'LISTEN/NOTIFY'}. ${PLAYERS.toLocaleString('en')} players, each with a session,`,
  `spread over the instances, each following their user's stream; ${members.length.toLocaleString('en')} of them seated ten to a room also follow the room's stream and its chat.`,
  `Load over REST, spread over the live instances: ${CHAT_RATE} chat messages a second, and ${CHURN_RATE} times a second an owner invites an idle player, who joins and leaves 3 s later.`,
  `After ${STEADY} s of it one instance is killed (kill -9); its players reconnect to the others (spread over them, as a balancer would spread them) and resume; ${AFTER_KILL} s later the load stops, and the check waits until every dropped player is back.`,
  '',
  '| measure | value |',
  '| --- | ---: |',
  `| sockets connected, authenticated and subscribed | ${PLAYERS.toLocaleString('en')} in ${connectSeconds.toFixed(1)} s (${WAVE} at a time in each of ${Math.ceil(PLAYERS / PLAYERS_PER_PROCESS)} processes) |`,
  `| instances' memory | ${idleRss.toFixed(0)} MB idle, ${rssAfter.toFixed(0)} MB with every socket: ${perSocketKb.toFixed(1)} KB a socket |`,
  `| PostgreSQL connections of the ${INSTANCES} instances | ${connectionsAfterConnect} once connected, ${connectionsUnderLoad} under the load |`,
  ...(BUS === 'nats'
    ? [
        `| NATS messages, steady: published, and handed to the ${INSTANCES} instances | ${((nats1.in - nats0.in) / windowSeconds).toFixed(0)} a second, ${((nats1.out - nats0.out) / windowSeconds).toFixed(0)} a second (LISTEN/NOTIFY would hand every one to every instance: ${(((nats1.in - nats0.in) * INSTANCES) / windowSeconds).toFixed(0)}) |`,
      ]
    : []),
  `| deliveries (events to sockets), steady | ${(deliveries / windowSeconds).toFixed(0)} a second |`,
  `| instances' CPU, steady | ${((cpu1 - cpu0) / windowSeconds).toFixed(2)} cores: ${cpuPerDelivery.toFixed(0)} µs a delivery, all their work (REST calls, writes, presence) included |`,
  `| PostgreSQL's CPU, steady | ${((pg1 - pg0) / windowSeconds).toFixed(2)} cores |`,
  `| chat message, POST to socket, before the kill | p50 ${latency(steadyLatencies, 0.5)} ms, p99 ${latency(steadyLatencies, 0.99)} ms (${steadyLatencies.length.toLocaleString('en')} deliveries) |`,
  `| the same, the whole run (a POST the killed instance took is tried again elsewhere) | p50 ${latency(allLatencies, 0.5)} ms, p99 ${latency(allLatencies, 0.99)} ms, max ${latency(allLatencies, 1)} ms |`,
  `| load done | ${calls.messages.toLocaleString('en')} messages, ${calls.churns.toLocaleString('en')} invite-join-leave rounds, ${calls.refused} calls refused (${refusedList}) |`,
  `| players dropped by the kill, and resumed | ${resumes.length.toLocaleString('en')}, ${resumed.length.toLocaleString('en')}: every one within ${allResumedIn.toFixed(1)} s of the kill |`,
  `| exact (every stream equals the log: each event once, in order, up to its last) | ${exact.toLocaleString('en')} of ${PLAYERS.toLocaleString('en')} players |`,
  '',
])
process.exit(exact === PLAYERS && resumed.length === resumes.length ? 0 : 1)
