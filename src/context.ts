import packageJson from '../package.json'
import type { Config } from './config'
import type { Database } from './db/database'
import type { Logger } from './lib/logger'
import { PasswordHasher } from './lib/password'
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

/** Wires stores into services: the one place that knows how the pieces fit. */
export function createContext(config: Config, db: Database, log: Logger, jwtSecret: string) {
  const passwords = new PasswordHasher(config.password)
  const userStore = new UserStore(db)
  const sessions = new SessionStore(db)
  const throttle = new LoginThrottle(new ThrottleStore(db), config.login)
  const users = new UserService(db, userStore, sessions, passwords, config.password.minLength)
  const auth = new AuthService(db, userStore, users, sessions, throttle, passwords, config.refreshTokenTtl)
  const roomStore = new RoomStore(db)
  const inviteStore = new InviteStore(db)
  const rooms = new RoomService(db, roomStore, inviteStore, config.rooms)
  const invites = new InviteService(db, inviteStore, roomStore, rooms, userStore, config.inviteTtl)
  // Deleting a user also takes them out of their rooms (their invitations go with them by cascade).
  users.onDelete((userId, tx) => rooms.removeFromAllRooms(userId, tx))
  return { config, db, log, jwtSecret, version: packageJson.version, passwords, users, auth, rooms, invites }
}
