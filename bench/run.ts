/**
 * The benchmark: `bun run bench` (add `-- --quick` for a short smoke run).
 * Builds the binary, seeds SQLite (and PostgreSQL when reachable at BENCH_DATABASE_URL), starts the
 * binary with the production defaults, and drives it with wrk on 127.0.0.1 next to a bare Bun.serve
 * ceiling, so that every figure is also a ratio that holds on a noisy machine, and the hot routes
 * beside a hand-tuned frameworkless reference doing the same work (bench/reference/). Writes
 * bench/RESULTS.md.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import elysiaPackage from 'elysia/package.json'
import { openDatabase } from '../src/db/database'
import { cpuSeconds, rssOf, waitFor } from './proc'
import { BENCH_PASSWORD, seed } from './seed'

const QUICK = process.argv.includes('--quick')
const DURATION = QUICK ? 3 : 8
/** Routes with a target run this many times, each right after its own ceiling run; the median ratio counts. */
const TRIALS = QUICK ? 1 : 3
const TRIAL_DURATION = QUICK ? 3 : 4
const CONNECTIONS = 64
/** The pace of the probes beside the login load: each of 8 connections waits 10 ms between requests (at most 800 a second). */
const LIGHT_LOAD_PAUSE_MS = 10
/** The pause before memory is read after the load. */
const SETTLE_MS = 2000
const POSTGRES_URL = Bun.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const WORK = join(import.meta.dir, '.work')
const BINARY = join(WORK, 'sim-gateway')
const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256'

interface WrkResult {
  rps: number
  p50: number
  p99: number
  errors: number
  requests: number
  /** CPU time the measured process spent per request, in microseconds (less sensitive to the machine's load than req/s). */
  cpuPerRequest?: number
}

interface Row {
  name: string
  result: WrkResult
  /** The ceiling measured just before this route, which its ratio is taken against. */
  ceiling?: WrkResult
  ratio?: number
  /** The hand-tuned reference doing the same work (bench/reference/), measured right after this route. */
  reference?: WrkResult
  target?: string
  met?: boolean
}

rmSync(WORK, { recursive: true, force: true })
mkdirSync(WORK, { recursive: true })
if (!Bun.which('wrk')) {
  console.error('wrk is missing: install it with `apt-get install wrk` (Debian/Ubuntu) and run again')
  process.exit(1)
}

step('building the binary')
run([process.execPath, 'scripts/build.ts', '--outfile', BINARY])

const CEILING_URL = 'http://127.0.0.1:4400/'
const ceilingProcess = Bun.spawn([process.execPath, join(import.meta.dir, 'ceiling.ts')], { env: { PORT: '4400' }, stdout: 'ignore' })
await waitFor(CEILING_URL)

const report: string[] = []
const sqlite = await benchStore('sqlite', `sqlite:${join(WORK, 'bench.sqlite')}`)
let postgres: Awaited<ReturnType<typeof benchStore>> | undefined
if (await reachable(POSTGRES_URL)) postgres = await benchStore('postgres', await freshPostgres())
else report.push(`PostgreSQL at ${POSTGRES_URL} was not reachable: its figures are missing.`)

ceilingProcess.kill()
await writeResults()
rmSync(WORK, { recursive: true, force: true })

async function benchStore(store: 'sqlite' | 'postgres', databaseUrl: string) {
  step(`${store}: seeding 10,000 users, 2,000 rooms, invitations`)
  const db = await openDatabase(databaseUrl, 4)
  const { refreshTokens } = await seed(db, QUICK ? 20_000 : 80_000)
  await db.close()
  const tokensFile = join(WORK, `${store}-refresh-tokens.txt`)
  await Bun.write(tokensFile, `${refreshTokens.join('\n')}\n`)

  step(`${store}: starting the binary`)
  const port = store === 'sqlite' ? 4401 : 4402
  const server = Bun.spawn([BINARY], {
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      JWT_SECRET,
      // One load generator on one address, logging in to one account on several connections at once,
      // is exactly what these limits exist to stop.
      AUTH_RATE_LIMIT: '1000000',
      LOGIN_MAX_FAILURES: '1000',
    },
    stdout: Bun.file('/dev/null'),
    stderr: 'inherit',
  })
  const base = `http://127.0.0.1:${port}`
  const referencePort = port + 10
  const reference = Bun.spawn([process.execPath, join(import.meta.dir, 'reference/server.ts')], {
    env: { PORT: String(referencePort), DATABASE_URL: databaseUrl, JWT_SECRET },
    stdout: Bun.file('/dev/null'),
    stderr: 'inherit',
  })
  const referenceBase = `http://127.0.0.1:${referencePort}`
  await waitFor(`${base}/health`)
  await waitFor(`${referenceBase}/health`)
  await Bun.sleep(1000)
  const rssIdle = rssOf(server.pid)
  const user = await login(base, 'bench_user')
  const admin = await login(base, 'bench_admin')

  const rows: Row[] = []
  // The machine's speed drifts within a run, so each route is compared with the ceiling measured right
  // before it, in several trials: the trial with the median ratio is the one reported.
  // With `path` on the reference too: a run of it follows each trial, and the trial's ratio to it is shown beside the ceiling's.
  const measure = async (name: string, path: string, options: LoadOptions = {}, targetRatio?: number, onReference = false) => {
    let ceiling: WrkResult | undefined
    let result: WrkResult
    let referenceRun: WrkResult | undefined
    if (targetRatio === undefined) result = await wrk(`${base}${path}`, { ...options, pid: server.pid })
    else {
      const trials: { ceiling: WrkResult; result: WrkResult; reference?: WrkResult }[] = []
      for (let trial = 0; trial < TRIALS; trial++) {
        const ceilingRun = await wrk(CEILING_URL, { pid: ceilingProcess.pid, duration: TRIAL_DURATION })
        const serviceRun = await wrk(`${base}${path}`, { ...options, pid: server.pid, duration: TRIAL_DURATION })
        const referenceTrial = onReference ? await wrk(`${referenceBase}${path}`, { ...options, pid: reference.pid, duration: TRIAL_DURATION }) : undefined
        trials.push({ ceiling: ceilingRun, result: serviceRun, reference: referenceTrial })
      }
      trials.sort((a, b) => a.result.rps / a.ceiling.rps - b.result.rps / b.ceiling.rps)
      ;({ ceiling, result, reference: referenceRun } = trials[Math.floor(TRIALS / 2)]!)
    }
    const ratio = ceiling && result.rps / ceiling.rps
    rows.push({
      name,
      result,
      ceiling,
      ratio,
      reference: referenceRun,
      target: targetRatio === undefined ? undefined : `>= ${targetRatio.toFixed(2)}`,
      met: ratio === undefined ? undefined : ratio >= targetRatio!,
    })
    console.log(
      `  ${name}: ${result.rps.toFixed(0)} req/s${ceiling ? ` (ceiling ${ceiling.rps.toFixed(0)})` : ''}${referenceRun ? ` (reference ${referenceRun.rps.toFixed(0)})` : ''}, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ${result.cpuPerRequest?.toFixed(1)} us CPU per request, errors ${result.errors}`,
    )
    return result
  }

  step(`${store}: load, ${CONNECTIONS} connections, ${DURATION} s each`)
  // Issue 24's targets: /health 0.75 of the ceiling; the token's routes 0.50 on SQLite and 0.40 on PostgreSQL (and 0.9 of the reference).
  const tokenTarget = store === 'sqlite' ? 0.5 : 0.4
  await measure('GET /health', '/health', {}, 0.75, true)
  await measure('GET /auth/me', '/auth/me', { token: user }, tokenTarget, true)
  await measure('GET /auth/verify-token', '/auth/verify-token', { token: user }, tokenTarget, true)
  await measure('GET /rooms/my (in 5 rooms)', '/rooms/my', { token: user }, 0.3, true)
  await measure('GET /invites/my', '/invites/my', { token: user }, 0.3)
  await measure('GET /users?limit=50 (admin)', '/users?limit=50', { token: admin }, 0.2)
  await measure('POST /auth/refresh', '/auth/refresh', { refreshTokensFile: tokensFile })

  // Login is bound by argon2id: compare with what Bun.password.verify alone does at the same concurrency.
  const verifyRate = await verifyThroughput(navigator.hardwareConcurrency)
  // Few connections and a long timeout: at a dozen logins a second, 64 queued connections would wait
  // past wrk's 2 s timeout and count as errors the service never made.
  const [loginLoad, healthUnderLogin] = await Promise.all([
    wrk(`${base}/auth/login`, {
      body: JSON.stringify({ username: 'bench_user', password: BENCH_PASSWORD }),
      connections: 4 * navigator.hardwareConcurrency,
      timeout: 10,
    }),
    wrk(`${base}/health`, { connections: 8, rate: true }),
  ])
  const loginRatio = loginLoad.rps / verifyRate
  rows.push({ name: 'POST /auth/login', result: loginLoad, ratio: loginRatio, target: '>= 0.80 of verify alone', met: loginRatio >= 0.8 })
  rows.push({ name: 'GET /health during login load', result: healthUnderLogin, target: 'p99 < 20 ms', met: healthUnderLogin.p99 < 20 })
  console.log(
    `  login: ${loginLoad.rps.toFixed(1)} req/s vs Bun.password.verify alone ${verifyRate.toFixed(1)}/s; /health p99 meanwhile ${healthUnderLogin.p99.toFixed(2)} ms`,
  )

  if (store === 'sqlite') {
    // Tracing off is every row above: no hook is registered and the store is not wrapped. On, it costs this much.
    step('sqlite: two routes again with tracing on, spans sent to a local OTLP sink')
    let exported = 0
    const sink = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch(request) {
        exported += (await request.text()).split('"spanId"').length - 1
        return new Response('{}')
      },
    })
    const traced = Bun.spawn([BINARY], {
      env: { PORT: '4403', HOST: '127.0.0.1', DATABASE_URL: databaseUrl, JWT_SECRET, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.port}` },
      stdout: Bun.file('/dev/null'),
      stderr: 'inherit',
    })
    await waitFor('http://127.0.0.1:4403/health')
    // A new session: the login load above ended the first ones (MAX_SESSIONS_PER_USER).
    const tracedUser = await login('http://127.0.0.1:4403', 'bench_user')
    for (const [name, path] of [
      ['GET /auth/me', '/auth/me'],
      ['GET /rooms/my (in 5 rooms)', '/rooms/my'],
    ] as const) {
      const result = await wrk(`http://127.0.0.1:4403${path}`, { token: tracedUser, pid: traced.pid })
      rows.push({ name: `${name}, tracing on`, result })
      console.log(`  ${name} with tracing: ${result.rps.toFixed(0)} req/s, ${result.cpuPerRequest?.toFixed(1)} us CPU per request`)
    }
    traced.kill('SIGTERM')
    await traced.exited
    sink.stop(true)
    report.push(`Tracing on exported ${exported} spans to the local sink (the rows marked "tracing on").`)
  }

  // Once the logins wrk left queued are done: each holds an argon2id hash's 64 MiB while it runs.
  await Bun.sleep(SETTLE_MS)
  const rssLoaded = rssOf(server.pid)
  server.kill('SIGTERM')
  reference.kill()
  await server.exited

  step(`${store}: start-up to first 200, 20 starts`)
  const startups: number[] = []
  for (let i = 0; i < 20; i++) startups.push(await startupTime(databaseUrl, 4410 + i))
  startups.sort((a, b) => a - b)
  return { rows, verifyRate, rssIdle, rssLoaded, startupMedian: startups[10]! }
}

interface LoadOptions {
  token?: string
  body?: string
  refreshTokensFile?: string
  connections?: number
  /** Light background load (used beside the login run): each connection pauses LIGHT_LOAD_PAUSE_MS between requests. */
  rate?: boolean
  /** Seconds before wrk gives up on a response. */
  timeout?: number
  /** The process answering, whose CPU time per request is reported. */
  pid?: number
  /** Seconds of load (default DURATION). */
  duration?: number
}

async function wrk(url: string, options: LoadOptions): Promise<WrkResult> {
  const script = join(WORK, `load-${crypto.randomUUID()}.lua`)
  await Bun.write(script, luaScript(options))
  const connections = options.connections ?? CONNECTIONS
  const cpuBefore = options.pid === undefined ? 0 : cpuSeconds(options.pid)
  // Not spawnSync: this process must keep answering meanwhile (the OTLP sink of the tracing rows).
  const load = Bun.spawn(['wrk', '-t2', `-c${connections}`, `-d${options.duration ?? DURATION}s`, `--timeout=${options.timeout ?? 2}s`, '--latency', '-s', script, url], {
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [output, errors, exitCode] = await Promise.all([new Response(load.stdout).text(), new Response(load.stderr).text(), load.exited])
  if (exitCode !== 0) throw new Error(`wrk failed:\n${errors}`)
  const result = parseWrk(output)
  if (options.pid !== undefined) result.cpuPerRequest = ((cpuSeconds(options.pid) - cpuBefore) * 1e6) / result.requests
  return result
}

function luaScript({ token, body, refreshTokensFile, rate }: LoadOptions): string {
  const headers = [
    token && `wrk.headers["Authorization"] = "Bearer ${token}"`,
    (body || refreshTokensFile) && 'wrk.headers["Content-Type"] = "application/json"',
  ]
  if (refreshTokensFile)
    // Each thread walks its own half of the tokens; a refresh token can be spent only once.
    return `${headers.filter(Boolean).join('\n')}
wrk.method = "POST"
local tokens = {}
for line in io.lines("${refreshTokensFile}") do tokens[#tokens + 1] = line end
local counter = 0
local threads = 0
function setup(thread) thread:set("offset", threads) threads = threads + 1 end
function init(args) counter = offset end
function request()
  counter = counter + 2
  local token = tokens[(counter % #tokens) + 1]
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')
end
`
  return `${headers.filter(Boolean).join('\n')}
${body ? `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}` : ''}
${rate ? `function delay() return ${LIGHT_LOAD_PAUSE_MS} end` : ''}
`
}

function parseWrk(output: string): WrkResult {
  const number = (pattern: RegExp) => Number(output.match(pattern)?.[1] ?? Number.NaN)
  const latency = (percentile: string) => {
    const match = output.match(new RegExp(`^\\s+${percentile}%\\s+([\\d.]+)(us|ms|s)`, 'm'))
    if (!match) return Number.NaN
    const value = Number(match[1])
    return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value
  }
  const socket = output.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)
  const socketErrors = socket ? socket.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0
  const non2xx = number(/Non-2xx or 3xx responses: (\d+)/)
  return {
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50: latency('50'),
    p99: latency('99'),
    errors: socketErrors + (Number.isNaN(non2xx) ? 0 : non2xx),
    requests: number(/(\d+) requests in/),
  }
}

async function verifyThroughput(concurrency: number): Promise<number> {
  const hash = await Bun.password.hash(BENCH_PASSWORD, { algorithm: 'argon2id', memoryCost: 65_536, timeCost: 2 })
  let done = 0
  const until = performance.now() + DURATION * 1000
  const start = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await Bun.password.verify(BENCH_PASSWORD, hash)
        done++
      }
    }),
  )
  return done / ((performance.now() - start) / 1000)
}

async function startupTime(databaseUrl: string, port: number): Promise<number> {
  const started = performance.now()
  const child = Bun.spawn([BINARY], { env: { PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: databaseUrl, JWT_SECRET, LOG_LEVEL: 'silent' } })
  await waitFor(`http://127.0.0.1:${port}/health`, 1)
  const elapsed = performance.now() - started
  child.kill('SIGTERM')
  await child.exited
  return elapsed
}

async function login(base: string, username: string): Promise<string> {
  const response = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: BENCH_PASSWORD }),
  })
  const body = (await response.json()) as { access_token: { token: string } }
  return body.access_token.token
}

async function reachable(url: string): Promise<boolean> {
  try {
    const sql = new Bun.SQL(url, { connectionTimeout: 3, max: 1 })
    await sql.unsafe('SELECT 1')
    await sql.close()
    return true
  } catch {
    return false
  }
}

async function freshPostgres(): Promise<string> {
  const sql = new Bun.SQL(POSTGRES_URL, { max: 1 })
  await sql.unsafe('DROP DATABASE IF EXISTS sim_gateway_bench WITH (FORCE)')
  await sql.unsafe('CREATE DATABASE sim_gateway_bench')
  await sql.close()
  const url = new URL(POSTGRES_URL)
  url.pathname = '/sim_gateway_bench'
  return url.toString()
}

function run(command: string[]): string {
  const result = Bun.spawnSync(command, { stdout: 'pipe', stderr: 'pipe' })
  if (result.exitCode !== 0) throw new Error(`${command.join(' ')} failed:\n${result.stderr.toString()}`)
  return result.stdout.toString()
}

function step(message: string): void {
  console.log(`\n== ${message}`)
}

async function writeResults(): Promise<void> {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const lines = [
    '# Benchmark results',
    '',
    `Machine: ${navigator.hardwareConcurrency} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB memory. Bun ${Bun.version}, Elysia ${elysiaPackage.version}.`,
    `Command: \`bun run bench\` (${new Date().toISOString().slice(0, 10)}). wrk with 2 threads and ${CONNECTIONS} connections on 127.0.0.1, sharing the`,
    'two cores with the service. Production defaults: request logs (to /dev/null), metrics, security headers, argon2id',
    'at m=64 MiB, t=2, HASH_CONCURRENCY = cores. Only AUTH_RATE_LIMIT and LOGIN_MAX_FAILURES are raised, because a',
    'single load generator logging in to one account from one address on several connections is what they exist to stop.',
    `Routes with a target run ${TRIALS} times for ${TRIAL_DURATION} s, each time right after a run of the bare Bun.serve ceiling (the`,
    "machine's speed drifts within a run); the trial with the median ratio is shown. The others run once for",
    `${DURATION} s. CPU µs/req is the answering process's own CPU time per request, read from /proc.`,
    'The reference (bench/reference/server.ts) does the same work as the service on the same store with no framework:',
    "security headers, a request id, a request line and a latency histogram, the token checked and the session and its user",
    "read on each request with the service's own code; it runs right after the service in each trial of the routes it has.",
    `Binary: ${(statSync(BINARY).size / 2 ** 20).toFixed(0)} MB.`,
    '',
  ]
  for (const [store, figures] of [
    ['SQLite', sqlite],
    ['PostgreSQL', postgres],
  ] as const) {
    if (!figures) continue
    lines.push(
      `## ${store}`,
      '',
      '| route | req/s | p50 ms | p99 ms | errors | CPU µs/req | ceiling req/s | ratio | target | met | reference req/s | reference CPU µs/req | of the reference |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|',
    )
    for (const { name, result, ceiling, ratio, target, met, reference } of figures.rows) {
      const cells = [
        name,
        result.rps.toFixed(0),
        result.p50.toFixed(2),
        result.p99.toFixed(2),
        result.errors,
        result.cpuPerRequest?.toFixed(1) ?? '',
        ceiling?.rps.toFixed(0) ?? '',
        ratio?.toFixed(2) ?? '',
        target ?? '',
        met === undefined ? '' : met ? 'yes' : '**no**',
        reference?.rps.toFixed(0) ?? '',
        reference?.cpuPerRequest?.toFixed(1) ?? '',
        reference ? (result.rps / reference.rps).toFixed(2) : '',
      ]
      lines.push(`| ${cells.join(' | ')} |`)
    }
    lines.push(
      '',
      `- Bun.password.verify alone, ${navigator.hardwareConcurrency} at a time: ${figures.verifyRate.toFixed(1)}/s`,
      `- start to first 200 on /health, median of 20: ${figures.startupMedian.toFixed(1)} ms (target <= 50 ms)`,
      `- resident memory: ${figures.rssIdle.toFixed(0)} MB idle (target <= 60), ${figures.rssLoaded.toFixed(0)} MB after the load (target <= 150)`,
      '',
    )
  }
  if (report.length > 0) lines.push(...report, '')
  const previous = await Bun.file(join(import.meta.dir, 'RESULTS.md'))
    .text()
    .catch(() => '')
  const reading = previous.includes('## Reading') ? previous.slice(previous.indexOf('## Reading')) : ''
  await Bun.write(join(import.meta.dir, 'RESULTS.md'), `${lines.join('\n')}\n${reading}`)
  console.log(`\n${lines.join('\n')}`)
}
