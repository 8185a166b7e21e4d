/**
 * A/B of two builds: `bun bench/ab.ts <commit> [<rounds>]` compares the binary of `<commit>` (A)
 * with the binary of the working tree (B). Each build seeds its own SQLite file with its own
 * bench/seed.ts (their migrations may differ), then the two binaries take turns under wrk, route
 * by route, `<rounds>` times (default 6). What it compares is the CPU time each binary spends per
 * request (from /proc), as medians: on a machine whose speed drifts from minute to minute, a
 * process's own CPU per request moves far less than its requests per second.
 */
import { rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { cpuSeconds, waitFor } from './proc'
import { BENCH_PASSWORD } from './seed'

const [commit, roundsArgument] = process.argv.slice(2)
if (!commit) {
  console.error('usage: bun bench/ab.ts <commit> [<rounds>]')
  process.exit(2)
}
const ROUNDS = Number(roundsArgument ?? 6)
const DURATION_SECONDS = 4
const ROOT = resolve(import.meta.dir, '..')
const WORK = join(import.meta.dir, '.work-ab')
const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256'
const ROUTES = [
  { name: 'GET /health', path: '/health', as: undefined },
  { name: 'GET /auth/me', path: '/auth/me', as: 'bench_user' },
  { name: 'GET /rooms/my', path: '/rooms/my', as: 'bench_user' },
  { name: 'GET /invites/my', path: '/invites/my', as: 'bench_user' },
  { name: 'GET /users?limit=50', path: '/users?limit=50', as: 'bench_admin' },
] as const

interface Build {
  label: string
  tree: string
  binary: string
  database: string
  port: number
  process?: ReturnType<typeof Bun.spawn>
  tokens: Record<string, string>
}

rmSync(WORK, { recursive: true, force: true })
if (!Bun.which('wrk')) {
  console.error('wrk is missing: install it with `apt-get install wrk` (Debian/Ubuntu) and run again')
  process.exit(1)
}
run(['git', 'worktree', 'add', '--detach', join(WORK, 'a'), commit], ROOT)
const builds: Build[] = [
  { label: `A (${run(['git', 'rev-parse', '--short', commit], ROOT).trim()})`, tree: join(WORK, 'a'), binary: join(WORK, 'a.bin'), database: join(WORK, 'a.sqlite'), port: 4451, tokens: {} },
  { label: 'B (working tree)', tree: ROOT, binary: join(WORK, 'b.bin'), database: join(WORK, 'b.sqlite'), port: 4452, tokens: {} },
]
try {
  for (const build of builds) {
    if (build.tree !== ROOT) run(['bun', 'install', '--frozen-lockfile'], build.tree)
    console.log(`${build.label}: building, seeding`)
    run([process.execPath, 'scripts/build.ts', '--outfile', build.binary], build.tree)
    run([process.execPath, '-e', seedScript(`sqlite:${build.database}`)], build.tree)
    build.process = Bun.spawn([build.binary], {
      env: { PORT: String(build.port), HOST: '127.0.0.1', DATABASE_URL: `sqlite:${build.database}`, JWT_SECRET, AUTH_RATE_LIMIT: '1000000' },
      stdout: Bun.file('/dev/null'),
      stderr: 'inherit',
    })
    await waitFor(`http://127.0.0.1:${build.port}/health`)
    for (const username of ['bench_user', 'bench_admin']) build.tokens[username] = await login(build.port, username)
  }

  const lines = [`| route | ${builds.map((build) => `${build.label} µs/req`).join(' | ')} | B/A |`, '|---|---|---|---|']
  for (const route of ROUTES) {
    const samples: number[][] = builds.map(() => [])
    for (let round = 0; round < ROUNDS; round++)
      // Who goes first alternates, so that a drift of the machine's speed favours neither.
      for (const index of round % 2 === 0 ? [0, 1] : [1, 0]) samples[index]!.push(cpuPerRequest(builds[index]!, route.path, route.as))
    const [a, b] = samples.map(median) as [number, number]
    lines.push(`| ${route.name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(2)} |`)
    console.log(`${route.name}: A ${samples[0]!.map((v) => v.toFixed(1)).join(' ')} | B ${samples[1]!.map((v) => v.toFixed(1)).join(' ')}`)
  }
  console.log(`\nCPU µs per request, medians of ${ROUNDS} runs of ${DURATION_SECONDS} s each, alternated:\n${lines.join('\n')}`)
} finally {
  for (const build of builds) build.process?.kill('SIGTERM')
  await Promise.all(builds.map((build) => build.process?.exited))
  run(['git', 'worktree', 'remove', '--force', join(WORK, 'a')], ROOT)
  rmSync(WORK, { recursive: true, force: true })
}

function cpuPerRequest(build: Build, path: string, as?: string): number {
  const pid = build.process!.pid
  const before = cpuSeconds(pid)
  const headers = as ? ['-H', `Authorization: Bearer ${build.tokens[as]}`] : []
  const output = run(['wrk', '-t2', '-c64', `-d${DURATION_SECONDS}s`, ...headers, `http://127.0.0.1:${build.port}${path}`], ROOT)
  const requests = Number(output.match(/(\d+) requests in/)?.[1])
  if (/Non-2xx/.test(output) || !requests) throw new Error(`${build.label} ${path}: ${output}`)
  return ((cpuSeconds(pid) - before) * 1e6) / requests
}

/** Seeds `url` with the tree's own bench/seed.ts, run inside that tree. */
function seedScript(url: string): string {
  return `
    import { openDatabase } from './src/db/database'
    import { seed } from './bench/seed'
    const db = await openDatabase(${JSON.stringify(url)}, 4)
    await seed(db, 20_000)
    await db.close()
  `
}

async function login(port: number, username: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: BENCH_PASSWORD }),
  })
  if (!response.ok) throw new Error(`login ${username}: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { access_token: { token: string } }).access_token.token
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

function run(command: string[], cwd: string): string {
  const result = Bun.spawnSync(command, { cwd, stdout: 'pipe', stderr: 'pipe' })
  if (result.exitCode !== 0) throw new Error(`${command.join(' ')}: ${result.stderr.toString()}`)
  return result.stdout.toString()
}
