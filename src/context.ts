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
import { SessionService } from './modules/auth/sessions'
import { SessionStore, ThrottleStore } from './modules/auth/store'
import { LoginThrottle } from './modules/auth/throttle'
import { InviteService } from './modules/rooms/invitations'
import { InviteStore } from './modules/rooms/invitation-store'
import { MembershipService } from './modules/rooms/membership'
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
  const roomStore = new RoomStore(db)
  const inviteStore = new InviteStore(db)
  const rateLimits = new RateLimitStore(db)
  const membership = new MembershipService({ db, rooms: roomStore, invites: inviteStore })
  const users = new UserService({
    db,
    users: userStore,
    passwords,
    sessions: new SessionService(sessions),
    membership,
    passwordMinLength: config.password.minLength,
  })
  const auth = new AuthService({
    db,
    users: userStore,
    accounts: users,
    sessions,
    throttle,
    passwords,
    policy: {
      accessTokenTtl: config.accessTokenTtl,
      refreshTokenTtl: config.refreshTokenTtl,
      sessionMaxLifetime: config.sessionMaxLifetime,
      maxSessionsPerUser: config.maxSessionsPerUser,
    },
  })
  const rooms = new RoomService({
    db,
    rooms: roomStore,
    membership,
    policy: config.rooms,
    creations: userRateLimit(rateLimits, 'rooms', config.userRateLimits.rooms),
  })
  const invites = new InviteService({
    invites: inviteStore,
    membership,
    users,
    sent: userRateLimit(rateLimits, 'invitations', config.userRateLimits.invitations),
    policy: { ttl: config.inviteTtl, retention: config.inviteRetention },
  })

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
