/**
 * The resume storm: `bun run bench:resume`. An instance holding N players dies (kill -9); while it
 * is down each player's account changes three times; it starts again and every player reconnects
 * at once, resuming their user's stream and their room's from where they stood. Timed from the
 * moment all are told to reconnect until the last `subscribed`, on SQLite with the compiled binary,
 * and checked for exactness: each player gets exactly the three events they missed, in order, and
 * nothing else. Rewrites the "Resume storm" section of bench/RESULTS.md.
 *
 * RESUME_SIZES (default `5000,18900`) picks the storms. A process here may hold at most 20,000
 * files (the container's hard limit, `ulimit -Hn`), and an instance keeps REALTIME_MAX_SOCKETS a
 * tenth of that (at most 1,000) under it, so one instance holds at most 19,000 sockets; the players
 * run in processes of 5,000.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { openDatabase, type SqlValue } from '../src/db/database'
import { migrate } from '../src/db/migrations'
import { InProcessBus } from '../src/modules/events/bus'
import { userStream } from '../src/modules/events/model'
import { EventLog } from '../src/modules/events/service'
import { EventStore } from '../src/modules/events/store'
import { accessTokenSigner } from '../src/modules/sessions/tokens'
import { buildBinary, cpuTimes, jsonLines, nextLine, quantile, rssOf, startBinary, writeSection } from './proc'
import { insertMany } from './seed'

const WORK = join(import.meta.dir, '.work-resume')
const RESULTS = join(import.meta.dir, 'RESULTS.md')
const SIZES = (Bun.env.RESUME_SIZES ?? '5000,18900').split(',').map(Number)
const PLAYERS_PER_PROCESS = 5000
/** Storms per size and stage: the table shows their median. */
const ROUNDS = Number(Bun.env.RESUME_ROUNDS ?? 3)
const STAGES = ['upgrade', 'auth', 'resume'] as const
const STAGE_NAMES = { upgrade: 'connect and hello only', auth: 'connect and authenticate', resume: 'the whole resume' }
const ROOM_SIZE = 10
const MISSED = 3
const SECRET = 'bench-secret-that-is-long-enough-for-hs256'
const PORT = 4520
/** A folder to write a CPU profile of the resuming instance to: it then runs from source under `bun --cpu-prof`. */
const PROFILE = Bun.env.RESUME_PROFILE

const BINARY = buildBinary(WORK)
const signer = accessTokenSigner({ secret: SECRET, algorithm: 'HS256', issuer: 'sim-gateway', audience: 'sim-gateway' })

const serverEnv = (file: string) => ({
  DATABASE_URL: `sqlite:${file}`,
  JWT_SECRET: SECRET,
  ACCESS_TOKEN_TTL: '3600',
  // Reconnecting from the load generator's few addresses.
  REALTIME_MAX_SOCKETS_PER_ADDRESS: '1000000',
  HOST: '0.0.0.0',
  LOG_LEVEL: 'warn',
})

interface Storm {
  elapsed: number
  user: number
  system: number
  players: number
  exact: number
  /** Connections the kernel dropped because the accept queue (Bun's backlog, 512) was full: each retried after a TCP timeout. */
  overflows: number
  failure?: string
}

interface Account {
  token: string
  userId: string
  roomId: string
}

/** `count` players with a live session each, seated ten to a room, written straight into the store; answers their access tokens. */
async function seedPlayers(url: string, count: number): Promise<Account[]> {
  const db = await openDatabase(url, 1)
  await migrate(db)
  const now = new Date().toISOString()
  const hash = await Bun.password.hash('bench-password', { algorithm: 'argon2id', memoryCost: 4096, timeCost: 1 })
  const players = Array.from({ length: count }, (_, index) => ({
    userId: Bun.randomUUIDv7(),
    sessionId: Bun.randomUUIDv7(),
    roomId: '',
    index,
  }))
  const rooms: SqlValue[][] = []
  for (let start = 0; start < count; start += ROOM_SIZE) {
    const roomId = Bun.randomUUIDv7()
    for (const player of players.slice(start, start + ROOM_SIZE)) player.roomId = roomId
    rooms.push([roomId, `Room ${start / ROOM_SIZE}`, players[start]!.userId, ROOM_SIZE, false, now, now])
  }
  const users = players.map((player) => [player.userId, `resumer_${player.index}`, hash, 'user', true, now, now])
  await insertMany(db, 'users (user_id, username, password_hash, user_role, is_active, created_at, updated_at)', users)
  await insertMany(db, 'sessions (session_id, user_id, created_at, expires_at)', players.map((player) => [player.sessionId, player.userId, now, '2099-01-01T00:00:00.000Z']))
  await insertMany(db, 'rooms (room_id, room_name, owner_id, max_players, is_closed, created_at, updated_at)', rooms)
  await insertMany(db, 'room_players (room_id, user_id, game_role, joined_at)', players.map((player) => [player.roomId, player.userId, 'crew', now]))
  await db.run('ANALYZE')
  await db.close()
  const exp = Math.floor(Date.now() / 1000) + 3600
  return Promise.all(
    players.map(async ({ userId, sessionId, roomId }) => ({ token: await signer.sign({ sub: userId, sid: sessionId, jti: crypto.randomUUID(), exp }), userId, roomId })),
  )
}

/** While the instance is down: each player's account changes `MISSED` times, committed as other instances would commit it. */
async function changeWhileAway(url: string, accounts: Account[]): Promise<void> {
  const db = await openDatabase(url, 1)
  const events = new EventLog({ db, eventStore: new EventStore(db.dialect), bus: new InProcessBus(), retention: 86_400, onWritten: () => {} })
  for (let start = 0; start < accounts.length; start += 250)
    await db.transaction(async (tx) => {
      for (const { userId } of accounts.slice(start, start + 250))
        for (let change = 0; change < MISSED; change++) await events.emit(tx, [userStream(userId), { type: 'account_changed', user_id: userId, fields: ['display_name'] }])
    })
  await db.close()
}

/** Connections dropped so far by full accept queues, on the whole machine (TcpExtListenOverflows). */
function listenOverflows(): number {
  const [names, values] = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((line) => line.startsWith('TcpExt:'))
  const index = names!.split(' ').indexOf('ListenOverflows')
  return Number(values!.split(' ')[index])
}

/** One storm: every player process told `command` at once, timed until the last is done. */
async function stormOf(pid: number, processes: Array<{ child: Subprocess<'pipe', 'pipe', 'inherit'>; lines: AsyncGenerator<Record<string, unknown>> }>, command: string): Promise<Storm> {
  const cpuBefore = cpuTimes(pid)
  const overflowsBefore = listenOverflows()
  const started = performance.timeOrigin + performance.now()
  for (const { child } of processes) {
    child.stdin.write(`${command}\n`)
    child.stdin.flush()
  }
  const results = (await Promise.all(processes.map(({ lines }) => nextLine(lines)))) as Array<{ doneAt: number; exact: number; failure?: string; cpuSeconds: number }>
  const cpuAfter = cpuTimes(pid)
  return {
    elapsed: Math.max(...results.map((result) => result.doneAt)) - started,
    user: cpuAfter.user - cpuBefore.user,
    system: cpuAfter.system - cpuBefore.system,
    players: results.reduce((sum, result) => sum + result.cpuSeconds, 0),
    exact: results.reduce((sum, result) => sum + result.exact, 0),
    overflows: listenOverflows() - overflowsBefore,
    failure: results.find((result) => result.failure)?.failure,
  }
}

const rows: string[] = []
mkdirSync(WORK, { recursive: true })
for (const size of SIZES) {
  console.log(`== ${size} players`)
  const file = join(WORK, `resume-${size}.sqlite`)
  const url = `sqlite:${file}`
  const accounts = await seedPlayers(url, size)
  const first = await startBinary(BINARY, PORT, serverEnv(file))
  const processes: Array<{ child: Subprocess<'pipe', 'pipe', 'inherit'>; lines: AsyncGenerator<Record<string, unknown>> }> = []
  for (let start = 0; start < size; start += PLAYERS_PER_PROCESS) {
    const planFile = join(WORK, `players-${start}.json`)
    await Bun.write(planFile, JSON.stringify({ port: PORT, players: accounts.slice(start, start + PLAYERS_PER_PROCESS) }))
    const child = Bun.spawn([process.execPath, join(import.meta.dir, 'resume-clients.ts'), planFile], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' })
    processes.push({ child, lines: jsonLines(child.stdout) })
  }
  const ready = (await Promise.all(processes.map(({ lines }) => nextLine(lines)))) as Array<{ cpuSeconds: number }>
  const rss = rssOf(first.child.pid)
  console.log(`  ${size} players connected, 500 at a time (players' CPU ${ready.reduce((sum, { cpuSeconds }) => sum + cpuSeconds, 0).toFixed(2)} s); the instance holds ${rss.toFixed(0)} MB`)
  let instance = first
  let round = 0
  /** Events each player's user stream gained since they last resumed. */
  let missed = 0
  // The smallest size also storms as far as the handshake alone, and as far as authenticated: what each step costs.
  for (const stage of size === SIZES[0] ? STAGES : (['resume'] as const)) {
    const storms: Storm[] = []
    for (let storm = 0; storm < ROUNDS; storm++, round++) {
      instance.child.kill('SIGKILL')
      await instance.child.exited
      await changeWhileAway(url, accounts)
      missed += MISSED
      const resuming = PROFILE ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${PROFILE}`, join(import.meta.dir, '../src/index.ts')] : BINARY
      instance = await startBinary(resuming, PORT, serverEnv(file))
      storms.push(await stormOf(instance.child.pid, processes, `resume ${round + 1} ${stage} ${missed}`))
      if (stage === 'resume') missed = 0
      const last = storms.at(-1)!
      console.log(
        `  ${stage} ${storm + 1}: ${last.elapsed.toFixed(0)} ms, server CPU ${(last.user + last.system).toFixed(2)} s (${last.system.toFixed(2)} s in the kernel), players' CPU ${last.players.toFixed(2)} s, ${last.overflows} handshakes dropped by a full accept queue${stage === 'resume' ? `, ${last.exact} of ${size} exact` : ''}${last.failure ? ` (${last.failure})` : ''}`,
      )
    }
    const median = (pick: (storm: Storm) => number) => quantile(storms.map(pick), 0.5)
    const serverCpu = median((storm) => storm.user + storm.system)
    const exact = Math.min(...storms.map((storm) => storm.exact))
    rows.push(
      `| ${size.toLocaleString('en')} | ${STAGE_NAMES[stage]} | ${median((storm) => storm.elapsed).toFixed(0)} ms (${storms.map((storm) => storm.elapsed.toFixed(0)).join(', ')}) | ${serverCpu.toFixed(2)} s (${((serverCpu * 1e6) / size).toFixed(0)} µs each; ${median((storm) => storm.system).toFixed(2)} s in the kernel) | ${median((storm) => storm.players).toFixed(2)} s | ${median((storm) => storm.overflows).toFixed(0)} | ${stage === 'resume' ? `${exact.toLocaleString('en')} of ${size.toLocaleString('en')} in each` : ''} | ${stage !== 'resume' ? '' : size <= 5000 ? '< 1 s' : '< 4 s (20,000)'} |`,
    )
  }
  for (const { child } of processes) {
    child.stdin.write('exit\n')
    child.stdin.flush()
  }
  await Promise.all(processes.map(({ child }) => child.exited))
  instance.child.kill('SIGINT')
  await instance.child.exited
}

writeSection(RESULTS, 'Resume storm', [
  `\`bun run bench:resume\`, ${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores; the players run on the same machine, ${PLAYERS_PER_PROCESS.toLocaleString('en')} to a process.`,
  '',
  `N players (each with a session of their own, ten to a room) are connected to one instance on SQLite, each following their user's stream and their room's.`,
  `The instance is killed (kill -9); while it is down each player's account changes ${MISSED} times; it starts again and every player reconnects at`,
  'once (connect, auth, subscribe both streams with `after` and `epoch`), timed from the signal to reconnect until the last `subscribed`.',
  `Exact: the player got the ${MISSED} events they missed, in order, nothing on the room's stream, and both streams \`recovered\`.`,
  `Each size storms ${ROUNDS} times (the instance killed and started again each time); the table shows the medians, and every storm's time.`,
  `The smallest size also storms as far as the server's \`hello\` only, and as far as \`ready\` (authenticated): what the steps cost.`,
  'Dropped handshakes: connections the kernel dropped because the accept queue was full (Bun listens with a backlog of 512, whatever',
  'Bun.serve is given); each waits out a TCP retransmission timeout.',
  '',
  '| players | storm | all done in | server CPU | players\' CPU | dropped handshakes | exact | target |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ...rows,
  '',
])
process.exit(0)
