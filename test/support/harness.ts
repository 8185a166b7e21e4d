import { SQL } from 'bun'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config'
import { createLogger } from '../../src/lib/logger'
import { prepare } from '../../src/server'

export const TEST_DATABASE_URL = Bun.env.TEST_DATABASE_URL
export const STORE = TEST_DATABASE_URL ? 'postgres' : 'sqlite'

/**
 * For tests that need one store: true on it; on the other, false, and the run says what it leaves
 * out and why (.ci/run runs both stores, so nothing is left out there).
 */
export function onlyOn(store: 'sqlite' | 'postgres', what: string): boolean {
  if (STORE === store) return true
  console.warn(`skipped on ${STORE}: ${what}; it runs on ${store === 'postgres' ? 'PostgreSQL (set TEST_DATABASE_URL)' : 'SQLite (without TEST_DATABASE_URL)'}`)
  return false
}

/** Settings for tests: real argon2id at the OWASP minimum (fast enough), a fixed secret, quiet logs. */
export const TEST_ENV = {
  JWT_SECRET: 'test-secret-that-is-long-enough-for-hs256!',
  PASSWORD_MEMORY_COST: '19456',
  PASSWORD_TIME_COST: '2',
  LOG_LEVEL: Bun.env.TEST_LOG_LEVEL ?? 'silent',
  DATABASE_POOL_SIZE: '4',
  // Tests register and log in far more, and more at once, than any one client would.
  AUTH_RATE_LIMIT: '1000000',
  QR_LOGIN_RATE_LIMIT: '1000000',
  QR_APPROVAL_RATE_LIMIT: '1000000',
  HASH_QUEUE_LIMIT: '10000',
  HASH_QUEUE_PER_CLIENT: '10000',
  ROOM_QUOTA: '10000',
  ROOM_SEAT_QUOTA: '10000',
  INVITE_PENDING_LIMIT: '10000',
  ROOM_RATE_LIMIT: '1000000',
  INVITE_RATE_LIMIT: '1000000',
  MESSAGE_RATE_LIMIT: '1000000',
  BLOCK_RATE_LIMIT: '1000000',
  ACCOUNT_RATE_LIMIT: '1000000',
  ADMIN_USERNAME: 'root_admin',
  ADMIN_PASSWORD: 'root-admin-password',
}

const cleanups: Array<() => Promise<void>> = []
const databases: string[] = []

/**
 * Every test file ends with `afterAll(closeTestResources)`: servers stop and stores close, one
 * after the other, then the test databases are dropped all at once (one by one, a file that made
 * twenty of them ran past the hook's time).
 */
export async function closeTestResources(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await Promise.all(
    databases.splice(0).map(async (name) => {
      const dropper = new SQL(TEST_DATABASE_URL!, { max: 1 })
      await dropper.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await dropper.close()
    }),
  )
}

/** A database nobody else uses: in-memory SQLite, or a new PostgreSQL database dropped after the file. */
export async function freshDatabaseUrl(): Promise<string> {
  if (!TEST_DATABASE_URL) return 'sqlite::memory:'
  const name = `sgw_test_${crypto.randomUUID().replaceAll('-', '')}`
  const admin = new SQL(TEST_DATABASE_URL, { max: 1 })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  await admin.close()
  databases.push(name)
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `/${name}`
  return url.toString()
}

export type TestApp = Awaited<ReturnType<typeof createTestApp>>

/** The real app on a fresh store, driven in-process through app.handle(); `log` receives its log lines. */
export async function createTestApp(env: Record<string, string> = {}, log?: (line: string) => void) {
  const avatarDir = mkdtempSync(join(tmpdir(), 'sgw-avatars-'))
  const config = loadConfig({ ...TEST_ENV, DATABASE_URL: await freshDatabaseUrl(), AVATAR_DIR: avatarDir, ...env })
  const { app, context } = await prepare(config, createLogger(config.logLevel, log))
  const cleanup = async () => {
    await context.relay?.stop()
    await context.presence.stop()
    await context.bus.stop()
    await context.db.close()
    rmSync(avatarDir, { recursive: true, force: true })
  }
  cleanups.push(cleanup)
  /** Closes this app before the file ends, for a test that makes many. */
  const close = async () => {
    const index = cleanups.indexOf(cleanup)
    if (index < 0) return
    cleanups.splice(index, 1)
    await cleanup()
  }
  return { app, context, config, close, client: createClient((request) => app.handle(request)) }
}

/** The real app listening on 127.0.0.1, for what only a socket shows: concurrency, body limits, client addresses. */
export async function startTestServer(env: Record<string, string> = {}) {
  const test = await createTestApp({ PORT: '0', HOST: '127.0.0.1', ...env })
  test.app.listen({ port: 0, hostname: '127.0.0.1' })
  const server = test.app.server
  if (!server) throw new Error('server did not start')
  const baseUrl = `http://127.0.0.1:${server.port}`
  cleanups.push(async () => {
    await server.stop(true)
  })
  return { ...test, baseUrl, client: createClient((request) => fetch(request), baseUrl) }
}

export interface Reply<Body = any> {
  status: number
  body: Body
  headers: Headers
}

export type Client = ReturnType<typeof createClient>

export function createClient(send: (request: Request) => Promise<Response>, baseUrl = 'http://localhost') {
  const call = async (method: string, path: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<Reply> => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    let body: string | undefined
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
      headers['content-type'] ??= 'application/json'
    }
    const response = await send(new Request(`${baseUrl}${path}`, { method, headers, body }))
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {}
    return { status: response.status, body: parsed, headers: response.headers }
  }
  return {
    call,
    get: (path: string, token?: string) => call('GET', path, { token }),
    delete: (path: string, token?: string) => call('DELETE', path, { token }),
    post: (path: string, body?: unknown, token?: string) => call('POST', path, { body, token }),
    put: (path: string, body?: unknown, token?: string) => call('PUT', path, { body, token }),

    async register(username: string, password = 'password-123') {
      const reply = await call('POST', '/auth/registrate', { body: { username, password } })
      if (reply.status !== 201) throw new Error(`register ${username}: ${reply.status} ${JSON.stringify(reply.body)}`)
      return session(reply.body)
    },
    async login(username: string, password: string) {
      const reply = await call('POST', '/auth/login', { body: { username, password } })
      if (reply.status !== 200) throw new Error(`login ${username}: ${reply.status} ${JSON.stringify(reply.body)}`)
      return session(reply.body)
    },
    loginAdmin() {
      return this.login(TEST_ENV.ADMIN_USERNAME, TEST_ENV.ADMIN_PASSWORD)
    },
  }
}

export interface Session {
  access: string
  refresh: string
  userId: string
  username: string
}

function session(body: any): Session {
  return { access: body.access_token.token, refresh: body.refresh_token.token, userId: body.user.user_id, username: body.user.username }
}

/** Asserts the SPEC's error envelope and returns its code. */
export function expectEnvelope(reply: Reply): string {
  const body = reply.body
  if (typeof body !== 'object' || body === null) throw new Error(`not an envelope: ${JSON.stringify(body)}`)
  const { success, message, timestamp, error } = body as Record<string, unknown>
  if (success !== false || typeof message !== 'string' || typeof error !== 'string' || typeof timestamp !== 'string')
    throw new Error(`not an envelope: ${JSON.stringify(body)}`)
  return error
}

/** A refusal as a client acts on it: its status, and the envelope's code and reason (asserted to be an envelope). */
export function refusal(reply: Reply): { status: number; error: string; reason?: string } {
  const error = expectEnvelope(reply)
  const { reason } = reply.body as { reason?: string }
  return { status: reply.status, error, ...(reason !== undefined && { reason }) }
}
