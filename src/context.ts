import packageJson from '../package.json'
import type { Config } from './config'
import type { Database } from './db/database'
import { RateLimitStore, userRateLimit } from './db/rate-limits'
import type { Logger } from './lib/logger'
import type { Tracer } from './lib/tracing'
import { PasswordHasher } from './lib/password'
import { nowIso } from './lib/clock'
import { atMostEvery } from './lib/metrics'
import { createMetrics } from './metrics'
import { AuthService } from './modules/auth/service'
import { SessionStore, ThrottleStore } from './modules/auth/store'
import { LoginThrottle } from './modules/auth/throttle'
import { InviteService } from './modules/invites/service'
import { InviteStore } from './modules/invites/store'
import { RoomService } from './modules/rooms/service'
import { RoomStore } from './modules/rooms/store'
import { UserService } from './modules/users/service'
import { UserStore } from './modules/users/store'

export type AppContext = ReturnType<typeof createContext>

/** A Prometheus scrape interval: gauges counted in the store are read no more often than this. */
const STORE_GAUGE_PERIOD_MS = 15_000

/** Wires stores into services: the one place that knows how the pieces fit. */
export function createContext(config: Config, db: Database, log: Logger, jwtSecret: string, tracer?: Tracer) {
  const metrics = createMetrics()
  const passwords = new PasswordHasher(config.password)
  const userStore = new UserStore(db)
  const sessions = new SessionStore(db)
  const throttle = new LoginThrottle(new ThrottleStore(db), config.login, { failures: metrics.loginFailures, lockouts: metrics.lockouts })
  const users = new UserService(db, userStore, sessions, passwords, config.password.minLength)
  const auth = new AuthService(db, userStore, users, sessions, throttle, passwords, {
    accessTokenTtl: config.accessTokenTtl,
    refreshTokenTtl: config.refreshTokenTtl,
    sessionMaxLifetime: config.sessionMaxLifetime,
    maxSessionsPerUser: config.maxSessionsPerUser,
  })
  const roomStore = new RoomStore(db)
  const inviteStore = new InviteStore(db)
  const rateLimits = new RateLimitStore(db)
  const rooms = new RoomService(db, roomStore, inviteStore, config.rooms, userRateLimit(rateLimits, 'rooms', config.userRateLimits.rooms))
  const invites = new InviteService(
    db,
    inviteStore,
    roomStore,
    rooms,
    userStore,
    config.inviteTtl,
    userRateLimit(rateLimits, 'invitations', config.userRateLimits.invitations),
    config.inviteRetention,
  )
  // Deleting a user also takes them out of their rooms (their invitations go with them by cascade).
  users.onDelete((userId, tx) => rooms.removeFromAllRooms(userId, tx))

  const { registry } = metrics
  // Read from the store at most every STORE_GAUGE_PERIOD_MS, whatever the number of scrapes.
  const fromStore = <Value>(collect: () => Promise<Value>) => atMostEvery(STORE_GAUGE_PERIOD_MS, collect)
  const activeSessions = fromStore(() => sessions.countActive(nowIso()))
  const usersByStatus = fromStore(() => userStore.countByStatus())
  const openRooms = fromStore(() => roomStore.countOpen())
  registry.gauge('sessions_active', 'Sessions neither revoked nor expired (read at most every 15 s).', async () => [[{}, await activeSessions()]])
  registry.gauge('users', 'User accounts, by status (read at most every 15 s).', async () => {
    const { active, inactive } = await usersByStatus()
    return [
      [{ status: 'active' }, active],
      [{ status: 'inactive' }, inactive],
    ]
  })
  registry.gauge('rooms_open', 'Rooms not closed (read at most every 15 s).', async () => [[{}, await openRooms()]])
  registry.gauge('password_hashes_in_flight', 'argon2id hashes or verifications running now.', () => [[{}, passwords.running]])
  registry.gauge('password_checks_waiting', 'Password hashes or verifications waiting for a free slot.', () => [[{}, passwords.waiting]])
  registry.gauge('process_resident_memory_bytes', 'Resident set size.', () => [[{}, process.memoryUsage.rss()]])
  registry.gauge('process_heap_used_bytes', 'JavaScript heap in use.', () => [[{}, process.memoryUsage().heapUsed]])
  registry.gauge('process_uptime_seconds', 'Seconds since the process started.', () => [[{}, process.uptime()]])

  return { config, db, log, jwtSecret, tracer, version: packageJson.version, metrics, passwords, users, auth, rooms, invites, rateLimits }
}
