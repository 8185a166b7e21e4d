/**
 * The hand-tuned reference of `bun run bench`: the same work as the service's hot routes, on the
 * same store, with no framework. Each answer carries the security headers and a request id, writes
 * a request line (to stdout, batched per turn of the event loop) and counts in a latency histogram,
 * as the service's do; a route with a token checks it with the service's own verifier and reads the
 * session and its user with the service's own statement, on every request, as the service does
 * without PRINCIPAL_CACHE. What it skips is what a framework adds: routing through hooks, the
 * request context, the check of each answer against its schema.
 *
 * Routes: GET /health, GET /auth/me, GET /auth/verify-token, GET /rooms/my. Settings: PORT,
 * DATABASE_URL, JWT_SECRET.
 */
import { openDatabase } from '../../src/db/database'
import { Histogram } from '../../src/lib/metrics'
import { RoomStore } from '../../src/modules/rooms/store'
import { SessionStore } from '../../src/modules/sessions/store'
import { AccessTokenVerifier } from '../../src/modules/sessions/tokens'
import type { User } from '../../src/modules/users/model'
import { SECURITY_HEADERS } from '../../src/plugins/security'
import { listAnswer } from '../../src/shared/model'

const db = await openDatabase(Bun.env.DATABASE_URL!, 10)
const verifier = new AccessTokenVerifier({ secret: Bun.env.JWT_SECRET!, algorithm: 'HS256', issuer: 'sim-gateway', audience: 'sim-gateway' })
const sessions = new SessionStore(db)
const rooms = new RoomStore(db)
const latency = new Histogram([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1])
const series = new Map<string, ReturnType<Histogram['series']>>()

let requests = 0
let lines: string[] = []
/** A request line, written with the others of its turn. */
function logLine(route: string, status: number, startedAt: number, id: string): void {
  if (lines.length === 0) setImmediate(() => {
    process.stdout.write(lines.join(''))
    lines = []
  })
  const seconds = (performance.now() - startedAt) / 1000
  const key = `${route} ${status}`
  let entry = series.get(key)
  if (!entry) series.set(key, (entry = latency.series({ route, status: String(status) })))
  latency.record(entry, seconds)
  lines.push(`{"time":"${new Date().toISOString()}","level":"info","message":"request","request_id":"${id}","method":"GET","route":"${route}","status":${status},"duration_ms":${Math.round(seconds * 100_000) / 100}}\n`)
}

function answer(route: string, status: number, body: unknown, startedAt: number, extra?: Record<string, string>): Response {
  const id = `ref-${(++requests).toString(36)}`
  logLine(route, status, startedAt, id)
  return new Response(JSON.stringify(body), { status, headers: { ...SECURITY_HEADERS, 'content-type': 'application/json', 'x-request-id': id, ...extra } })
}

/** The caller of a bearer token, from a live session; undefined answers 401. */
async function caller(request: Request): Promise<User | undefined> {
  const header = request.headers.get('authorization')
  const claims = header?.startsWith('Bearer ') ? await verifier.verify(header.slice(7)) : undefined
  if (!claims) return undefined
  const user = await sessions.findSessionUser(claims.sid, db)
  return user?.user_id === claims.sub && user.is_active ? user : undefined
}

const refused = (route: string, startedAt: number) =>
  answer(route, 401, { success: false, message: 'The session has ended; log in again', timestamp: new Date().toISOString(), error: 'unauthorized' }, startedAt)

Bun.serve({
  port: Number(Bun.env.PORT ?? 4405),
  hostname: '127.0.0.1',
  routes: {
    '/health': () => answer('/health', 200, { status: 'ok', uptime_seconds: process.uptime(), version: 'reference' }, performance.now()),
    '/auth/me': async (request) => {
      const startedAt = performance.now()
      const user = await caller(request)
      return user ? answer('/auth/me', 200, user, startedAt) : refused('/auth/me', startedAt)
    },
    '/auth/verify-token': async (request) => {
      const startedAt = performance.now()
      const user = await caller(request)
      if (!user) return refused('/auth/verify-token', startedAt)
      const body = { success: true, message: 'Token is valid', timestamp: new Date().toISOString() }
      return answer('/auth/verify-token', 200, body, startedAt, { 'x-user-id': user.user_id, 'x-user-role': user.user_role })
    },
    '/rooms/my': async (request) => {
      const startedAt = performance.now()
      const user = await caller(request)
      if (!user) return refused('/rooms/my', startedAt)
      const { rooms: page, total } = await rooms.list({ limit: 50, offset: 0 }, user.user_id)
      return answer('/rooms/my', 200, listAnswer('rooms', page, total), startedAt)
    },
  },
  fetch: () => new Response('not found', { status: 404 }),
})
