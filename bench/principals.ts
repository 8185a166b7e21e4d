/**
 * The principal cache benchmark: `bun run bench:principals`. Against the compiled binary:
 * 1. GET /auth/me a second, with PRINCIPAL_CACHE off and on, on SQLite and on PostgreSQL
 *    (BENCH_DATABASE_URL): 32 requests in flight from this process, one warm token.
 * 2. How long a revocation on one instance takes to bite on another (PostgreSQL, two instances):
 *    REVOCATIONS sessions, each asked for on B, logged out on A, then asked for on B again and again
 *    until B refuses it. Rewrites the "Principal cache" section of bench/RESULTS.md.
 */
import { join } from 'node:path'
import { openDatabase } from '../src/db/database'
import { SessionStore } from '../src/modules/sessions/store'
import { accessTokenSigner } from '../src/modules/sessions/tokens'
import { buildBinary, freshPostgresDatabase, quantile, startBinary, writeSection } from './proc'

const WORK = join(import.meta.dir, '.work-principals')
const POSTGRES_URL = Bun.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const RESULTS = join(import.meta.dir, 'RESULTS.md')
const SECRET = 'bench-secret-that-is-long-enough-for-hs256'
const REVOCATIONS = Number(Bun.env.REVOCATIONS ?? 10_000)
const SECONDS = 5
const IN_FLIGHT = 32

const BINARY = buildBinary(WORK)

async function instance(port: number, databaseUrl: string, cached: boolean) {
  return startBinary(BINARY, port, {
    DATABASE_URL: databaseUrl,
    JWT_SECRET: SECRET,
    AUTH_RATE_LIMIT: '1000000',
    PASSWORD_MEMORY_COST: '19456',
    LOG_LEVEL: 'warn',
    PRINCIPAL_CACHE: String(cached),
  })
}

async function register(base: string, username: string) {
  const reply = await fetch(`${base}/auth/registrate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'bench-password' }) })
  return (await reply.json()) as { access_token: { token: string }; user: { user_id: string } }
}

const me = (base: string, token: string) => fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${token}` } }).then(async (reply) => (await reply.arrayBuffer(), reply.status))

/** Requests a second for SECONDS, IN_FLIGHT at a time. */
async function throughput(base: string, token: string): Promise<number> {
  let done = 0
  const deadline = performance.now() + SECONDS * 1000
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < deadline) if ((await me(base, token)) === 200) done++
    }),
  )
  return done / SECONDS
}

const rows: string[] = []
let port = 4801
for (const [store, database] of [
  ['SQLite', async () => `sqlite:${join(WORK, `principals-${Date.now()}.sqlite`)}`],
  ['PostgreSQL', () => freshPostgresDatabase(POSTGRES_URL, 'sgw_bench_principals')],
] as const) {
  const url = await database()
  const perSecond: Record<string, number> = {}
  for (const cached of [false, true]) {
    const server = await instance(port++, url, cached)
    const { access_token } = await register(server.base, `principal_${cached}`)
    await throughput(server.base, access_token.token)
    perSecond[String(cached)] = await throughput(server.base, access_token.token)
    console.log(`== ${store}, PRINCIPAL_CACHE=${cached}: ${perSecond[String(cached)]!.toFixed(0)} GET /auth/me a second`)
    server.child.kill()
    await server.child.exited
  }
  rows.push(`| ${store} | ${perSecond.false!.toFixed(0)} | ${perSecond.true!.toFixed(0)} | ${(perSecond.true! / perSecond.false!).toFixed(2)} |`)
}

console.log(`== PostgreSQL, two instances: ${REVOCATIONS.toLocaleString('en')} revocations on A, each asked for on B until refused`)
const url = await freshPostgresDatabase(POSTGRES_URL, 'sgw_bench_revocations')
const [a, b] = [await instance(port++, url, true), await instance(port++, url, true)]
const { user } = await register(a.base, 'revoked_often')
// The sessions written straight to the store, their tokens signed here with the service's secret: logging in 10,000 times would take minutes of argon2id.
const db = await openDatabase(url, 2)
const sessions = new SessionStore(db)
const signer = accessTokenSigner({ secret: SECRET, algorithm: 'HS256', issuer: 'sim-gateway', audience: 'sim-gateway' })
const tokens: string[] = []
const now = new Date().toISOString()
const expiresAt = new Date(Date.now() + 86_400_000).toISOString()
for (let i = 0; i < REVOCATIONS; i++) {
  const sessionId = Bun.randomUUIDv7()
  await db.transaction((tx) => sessions.create({ sessionId, userId: user.user_id, refreshTokenHash: crypto.randomUUID(), now, expiresAt }, tx))
  tokens.push(await signer.sign({ sub: user.user_id, sid: sessionId, jti: crypto.randomUUID(), exp: Math.floor(Date.now() / 1000) + 3600 }))
}
await db.close()
const delays: number[] = []
for (const token of tokens) {
  if ((await me(b.base, token)) !== 200) throw new Error('a fresh session was refused on B')
  const logout = await fetch(`${a.base}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  if (logout.status !== 200) throw new Error(`logout answered ${logout.status}`)
  const revoked = performance.now()
  while ((await me(b.base, token)) !== 401) {}
  delays.push(performance.now() - revoked)
}
const revocation = { p50: quantile(delays, 0.5), p99: quantile(delays, 0.99), max: Math.max(...delays) }
console.log(`  refused on B after p50 ${revocation.p50.toFixed(2)} ms, p99 ${revocation.p99.toFixed(2)} ms, max ${revocation.max.toFixed(2)} ms`)

writeSection(RESULTS, 'Principal cache', [
  `\`bun run bench:principals\`, ${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores; the client runs on the same machine.`,
  '',
  `GET /auth/me a second, ${IN_FLIGHT} requests in flight from one Bun process, ${SECONDS} s, one instance:`,
  '',
  '| store | PRINCIPAL_CACHE=false | PRINCIPAL_CACHE=true | ratio |',
  '| --- | ---: | ---: | ---: |',
  ...rows,
  '',
  `A revocation on instance A refused on instance B (PostgreSQL, ${REVOCATIONS.toLocaleString('en')} logouts, each timed from A's answer to B's first 401, B asked again and again): p50 ${revocation.p50.toFixed(2)} ms, p99 ${revocation.p99.toFixed(2)} ms, maximum ${revocation.max.toFixed(2)} ms.`,
  '',
])
process.exit(0)
