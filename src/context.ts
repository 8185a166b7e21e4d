import packageJson from '../package.json'
import type { Config } from './config'
import type { Database } from './db/database'
import { RateLimitStore, userRateLimit } from './db/rate-limits'
import type { Logger } from './lib/logger'
import type { Tracer } from './lib/tracing'
import { PasswordHasher } from './lib/password'
import { nowIso } from './lib/clock'
import { openFileLimit, socketsWithinFileLimit } from './lib/file-limit'
import { type BackgroundTask, createMetrics } from './metrics'
import { type EventBus, InProcessBus, PostgresBus } from './modules/events/bus'
import { NatsBus } from './modules/events/nats-bus'
import { EventFeed } from './modules/events/feed'
import { EVENT_TYPES } from './modules/events/model'
import { EventLog } from './modules/events/service'
import { EventStore } from './modules/events/store'
import { LogReader } from './modules/events/reader'
import { AmqpPublisher } from './modules/broker/publisher'
import { allowedRoutingKeys } from './modules/broker/model'
import { EventRelay, RELAY } from './modules/broker/relay'
import { RelayStore } from './modules/broker/store'
import { PasswordCredentials } from './modules/credentials/password'
import { OAuthSignIn } from './modules/credentials/oauth'
import { OAuthProvider } from './modules/credentials/oauth-providers'
import { OAuthStore } from './modules/credentials/oauth-store'
import { QrLogin } from './modules/credentials/qr'
import { LoginRequestStore } from './modules/credentials/qr-store'
import { LoginThrottle } from './modules/credentials/throttle'
import { ThrottleStore } from './modules/credentials/throttle-store'
import { SessionService } from './modules/sessions/service'
import { PrincipalCache } from './modules/sessions/principals'
import { SessionStore } from './modules/sessions/store'
import { accessTokenSigner, AccessTokenVerifier } from './modules/sessions/tokens'
import { InvitationService } from './modules/rooms/invitation-service'
import { InvitationStore } from './modules/rooms/invitation-store'
import { MembershipService } from './modules/rooms/membership'
import { RoomService } from './modules/rooms/service'
import { RoomStore } from './modules/rooms/store'
import { RealtimeHub } from './modules/realtime/hub'
import { chatStreams } from './modules/realtime/streams/chat'
import { roomStreams } from './modules/realtime/streams/room'
import { userStreams } from './modules/realtime/streams/user'
import { Transport } from './modules/realtime/transport'
import { PresenceService } from './modules/realtime/presence/service'
import { SqlPresenceStore } from './modules/realtime/presence/store'
import { CLOSE } from './modules/realtime/protocol'
import { ChatService } from './modules/chat/service'
import { MessageStore } from './modules/chat/store'
import { DirectMessageService } from './modules/dms/service'
import { ExportService } from './modules/export/service'
import { DirectMessageStore } from './modules/dms/store'
import { LinkedAccountStore } from './modules/users/linked-account-store'
import { LinkedAccountService } from './modules/users/linked-accounts'
import { UserService } from './modules/users/service'
import { UserStore } from './modules/users/store'
import { AvatarImages } from './modules/avatars/image'
import { AvatarService } from './modules/avatars/service'
import { avatarStorage } from './modules/avatars/storage'
import { AvatarStore } from './modules/avatars/store'

export type AppContext = ReturnType<typeof createContext>

/** Wires stores into services: the one place that knows how the pieces fit. */
export function createContext(config: Config, db: Database, log: Logger, jwtSecret: string, tracer?: Tracer) {
  const metrics = createMetrics({ eventTypes: EVENT_TYPES, closeReasons: [...Object.keys(CLOSE), 'client'] })
  /** Work no request waits for failed: logged, and counted for the alert on background_errors_total. */
  const failed = (task: BackgroundTask, message: string, error: unknown, fields: Record<string, unknown> = {}) => {
    metrics.backgroundError(task)
    log.error(message, { ...fields, task, error: String(error) })
  }
  const passwords = new PasswordHasher(config.password)
  const userStore = new UserStore(db)
  const sessionStore = new SessionStore(db)
  const throttle = new LoginThrottle(new ThrottleStore(db), config.login, { failures: metrics.loginFailures, lockouts: metrics.lockouts })
  const roomStore = new RoomStore(db)
  const invitationStore = new InvitationStore(db)
  const rateLimits = new RateLimitStore(db)
  const eventStore = new EventStore(db.dialect)
  const bus = createBus()
  const events = new EventLog({ db, eventStore, bus, retention: config.eventRetention, onWritten: (event) => metrics.eventWritten(event.type) })
  const feed = new EventFeed({ log: events, bus, onError: (error, stream) => failed('event_log_read', 'event log read failed', error, { stream }) })
  const relay = config.broker.url ? createRelay(config.broker.url, config.broker) : undefined
  const membership = new MembershipService({ db, roomStore, invitationStore, events, seatQuota: config.rooms.seatQuota })
  const principals = config.principalCache && new PrincipalCache({ bus, events, maxEntries: config.principalCache.maxEntries })
  const sessions = new SessionService({
    db,
    sessionStore,
    events,
    principals,
    policy: {
      accessTokenTtl: config.accessTokenTtl,
      refreshTokenTtl: config.refreshTokenTtl,
      sessionMaxLifetime: config.sessionMaxLifetime,
      maxSessionsPerUser: config.maxSessionsPerUser,
    },
  })
  // One limit for every change a user makes to their own account: profile and linked accounts alike.
  const selfChanges = userRateLimit(rateLimits, 'account changes', config.userRateLimits.accountChanges)
  const users = new UserService({ db, userStore, passwords, events, selfChanges, passwordMinLength: config.password.minLength })
  const linkedAccounts = new LinkedAccountService({ db, store: new LinkedAccountStore(), users, selfChanges })
  const avatars = new AvatarService({
    db,
    store: new AvatarStore(),
    storage: avatarStorage(config.avatars.storage, `${config.apiPrefix}/avatars`),
    // A core always left to the event loop: a decode is a core's work, a walk through a hostile file is the loop's.
    images: new AvatarImages({ ...config.avatars, concurrency: Math.max(1, navigator.hardwareConcurrency - 1), queueLimit: config.avatars.uploadsAtOnce }),
    users,
    selfChanges,
    onError: (message, error) => failed('avatars', message, error),
  })
  // An account that stops being usable ends its sessions in the same transaction.
  users.onEnded((userId, why, tx) => sessions.endAllOf(userId, why === 'deleted' ? 'account_deleted' : 'account_deactivated', tx))
  // The ways in: a password, a provider's sign-in, and a QR code approved on a phone that is logged in.
  const credentials = {
    password: new PasswordCredentials({ db, users, sessions, throttle, passwords }),
    oauth: new OAuthSignIn({
      db,
      store: new OAuthStore(),
      users,
      sessions,
      providers: config.oauth.providers.map((entry) => new OAuthProvider(entry, config.oauth.timeout)),
      stateTtl: config.oauth.stateTtl,
    }),
    qr: new QrLogin({
      db,
      store: new LoginRequestStore(),
      sessions,
      events,
      feed,
      starts: userRateLimit(rateLimits, 'qr login requests', config.qrLogin.starts),
      decisions: userRateLimit(rateLimits, 'qr login decisions', config.qrLogin.decisions),
      policy: config.qrLogin,
    }),
  }
  const rooms = new RoomService({
    db,
    roomStore,
    membership,
    events,
    policy: config.rooms,
    creations: userRateLimit(rateLimits, 'rooms', config.userRateLimits.rooms),
  })
  const invites = new InvitationService({
    db,
    invitationStore,
    membership,
    events,
    users,
    sent: userRateLimit(rateLimits, 'invitations', config.userRateLimits.invitations),
    policy: { ttl: config.inviteTtl, retention: config.inviteRetention, pendingLimit: config.invitePendingLimit },
  })

  const messagesSent = userRateLimit(rateLimits, 'messages', config.userRateLimits.messages)
  const chat = new ChatService({
    db,
    messageStore: new MessageStore(),
    membership,
    events,
    sent: messagesSent,
    policy: config.chat,
  })
  const dms = new DirectMessageService({
    db,
    dmStore: new DirectMessageStore(),
    users,
    events,
    sent: messagesSent,
    blocks: userRateLimit(rateLimits, 'blocks', config.userRateLimits.blocks),
    blockQuota: config.blockQuota,
    policy: config.chat,
  })
  // A deleted user leaves their open rooms (ownership passes on) and their pending invitations are withdrawn;
  // erased, their closed seats go, their room messages stay authorless and their conversations go.
  users.onDeleted((userId, stillDeleted) => membership.leaveOpenRooms(userId, stillDeleted))
  users.onDeleted(async (userId, stillDeleted) => void (await invites.withdrawPendingOf(userId, stillDeleted)))
  users.onErase((userId) => membership.forgetClosedSeats(userId))
  users.onErase((userId) => chat.detachAuthor(userId))
  users.onErase((userId) => dms.forget(userId))
  users.onErase((userId) => avatars.forget(userId))
  const jwt = { ...config.jwt, secret: jwtSecret }
  // One verifier for HTTP and the websocket: a token checked for one is checked for both.
  const verifier = new AccessTokenVerifier(jwt)
  const signer = accessTokenSigner(jwt)
  const presence = new PresenceService({
    db,
    presenceStore: new SqlPresenceStore(db.dialect),
    roomStore,
    bus,
    timeout: config.realtime.presenceTimeout,
    onError: (error) => failed('presence', 'presence could not be recorded', error),
  })
  const fileLimit = openFileLimit()
  const maxSockets = socketsWithinFileLimit(config.realtime.maxSockets, fileLimit)
  if (maxSockets < config.realtime.maxSockets)
    log.info('realtime sockets capped by the file limit', { REALTIME_MAX_SOCKETS: config.realtime.maxSockets, sockets: maxSockets, ulimit_n: fileLimit })
  const realtimePolicy = { ...config.realtime, maxSockets }
  const transport = new Transport({ policy: realtimePolicy, metrics, log })
  // The kinds of stream, each deciding who may follow it and what its events mean: the user's own first.
  const chatKind = chatStreams({ rooms, chat, presence, bus, transport })
  const realtime = new RealtimeHub({
    transport,
    kinds: [userStreams(), roomStreams(rooms), chatKind.kind],
    ops: chatKind.ops,
    sessions,
    presence,
    bus,
    events,
    feed,
    tokens: verifier,
    metrics,
    policy: realtimePolicy,
  })

  const exporter = new ExportService({
    users,
    linkedAccounts,
    identities: credentials.oauth,
    rooms,
    chat,
    dms,
    exports: userRateLimit(rateLimits, 'exports', config.userRateLimits.exports),
    onError: (error) => failed('export', 'an export failed while it was being sent', error),
  })

  /** Several instances share a PostgreSQL and hear each other's commits (REALTIME_BUS); SQLite is one instance's own. */
  function createBus(): EventBus {
    if (db.dialect !== 'postgres') return new InProcessBus()
    if (config.bus.engine === 'postgres') return new PostgresBus(db)
    const { url, prefix, lookInterval } = config.bus
    return new NatsBus({
      url,
      prefix,
      lookInterval,
      log: new LogReader({ db, eventStore }),
      onError: (message, error) => failed('bus', message, error),
      onInfo: (message) => log.warn(message),
    })
  }

  /** Domain events to RabbitMQ (AMQP_URL): the log read in commit order, published by one instance at a time. */
  function createRelay(url: string, broker: Config['broker']) {
    const store = new RelayStore()
    // The log keeps what the relay has not published, however old.
    events.keepUnreadBy(() => store.position(RELAY, db))
    const relay: EventRelay = new EventRelay({
      db,
      store,
      reader: new LogReader({ db, eventStore }),
      publisher: new AmqpPublisher(url, broker.exchange, log),
      lock: db.sessionLock('event-relay'),
      bus,
      allowed: allowedRoutingKeys(broker.events),
      epoch: () => events.epoch(),
      metrics: metrics.watchRelay(() => relay.status),
      log,
      pollInterval: broker.pollInterval * 1000,
    })
    return relay
  }

  metrics.watch({
    activeSessions: () => sessionStore.countActive(nowIso()),
    usersByStatus: () => userStore.countByStatus(),
    openRooms: () => roomStore.countOpen(),
    passwords,
    realtime,
  })

  return {
    config,
    db,
    log,
    jwtSecret,
    tracer,
    version: packageJson.version,
    metrics,
    passwords,
    users,
    linkedAccounts,
    avatars,
    sessions,
    principals,
    credentials,
    verifier,
    signer,
    rooms,
    invites,
    rateLimits,
    events,
    bus,
    relay,
    realtime,
    transport,
    chat,
    dms,
    exporter,
    presence,
  }
}
