import type { Server, ServerWebSocket } from 'bun'
import type { Config } from '../../config'
import type { Logger } from '../../lib/logger'
import type { Metrics } from '../../metrics'
import type { SessionService } from '../sessions/service'
import type { ChatService } from '../chat/service'
import type { VerifiedClaims } from '../sessions/tokens'
import type { EventBus, Signal } from '../events/bus'
import type { EventFeed } from '../events/feed'
import type { PresenceService } from './presence'
import { chatStream, roomStream, type StoredEvent, userStream } from '../events/model'
import type { EventLog } from '../events/service'
import type { RoomService } from '../rooms/service'
import type { User } from '../users/model'
import { nextTurn } from '../../db/batches'
import { ApiError } from '../../shared/errors'
import type { StreamAccess, StreamRight } from '../rooms/service'
import { CLOSE, type ClientFrame, ClientFrames, type CloseReason, clientFrameCheck, type FrameError, type ServerFrame } from './protocol'

/** Bun's own socket under Elysia's wrapper (its data is Elysia's business). */
export type Socket = ServerWebSocket<any>

interface Subscription {
  /** In the stream's topic, getting live events (after catching up from the log). */
  live: boolean
  /** Why the user may follow it; undefined while that is being checked. */
  right?: StreamRight
  /** For an invitee: when the invitation runs out (ms since the epoch). */
  until?: number
  /** A change of rights came while the right was being checked: it is checked again. */
  doubted?: boolean
  /** The right was lost while the subscription caught up: it ends after this number, with `subscribed` then `unsubscribed`. */
  lostAfter?: number
  /** A chat stream: when this socket last said it was typing there (ms). */
  typedAt?: number
}

/** A user's account, shared by their sockets here, with the version of their rights it was read at. */
interface Account {
  user?: User
  /** The version of the user's rights this copy was read at. */
  readAt: number
  /** Bumped by each change of role or status the user's stream brings: a copy read before the last one is read again. */
  version: number
}

interface Connection {
  socket: Socket
  /** The client address it was admitted under (admit()). */
  address: string
  /** Whose socket it is, from the first token's claims on. */
  userId?: string
  /** Whether the session behind the first token was checked and its arrival recorded (then `ready` goes out). */
  authenticated: boolean
  /** Counted in its user's presence here, from the first check of its session on (its close may end it). */
  present: boolean
  /** The session of the last token sent: its end closes the socket. */
  sessionId?: string
  /** The auth deadline, then the access token's expiry. */
  timer: Timer
  /** Frames are handled one after another: Bun runs async message handlers side by side. */
  inbox: Promise<void>
  subscriptions: Map<string, Subscription>
  /** Frames this socket may still send in the current second. */
  allowance: number
  allowanceAt: number
  /** Why the server closed it, when it did. */
  closing?: CloseReason
  closed: boolean
}

/** A stream followed on this instance: by the sockets subscribed to it, and by its user's sockets for control. */
interface LocalStream {
  holders: number
  stop: () => void
  /** The sockets in its topic. */
  live: Set<Connection>
  /** Bytes published to the topic since its sockets' output was last looked at. */
  unchecked: number
  /** Sockets that see the room only by an invitation, which may run out. */
  invitees: Set<Connection>
  /** A chat stream whose room is closed: nobody types in it. */
  closed?: boolean
}

/**
 * A subscriber catches up in batches of about this many characters of frames, with a turn of the
 * event loop between: a batch is read, parsed and sent in one go (synchronously on SQLite), so its
 * size, not its count of events, is what holds the other requests.
 */
const REPLAY_BATCH_CHARS = 32 * 1024
/** Events in a batch: the first, the fewest and the most. */
const REPLAY_BATCH = { first: 16, min: 4, max: 500 }
/** A socket's typing signals in one room, at most one per this long (clients repeat them while their user types). */
const TYPING_INTERVAL_MS = 2000

/**
 * The websockets of this instance and the streams they follow. Each stream followed here is a
 * Bun topic: the feed hands its events over once, in order, and `server.publish` fans each out to
 * the topic's sockets natively (uncompressed: one serialisation, no per-socket JavaScript). A
 * subscriber first catches up from the log on its own, then joins the topic between two events.
 * Events that end a session or a right to a room act on the sockets they concern.
 */
export class RealtimeHub {
  readonly #connections = new Map<Socket, Connection>()
  readonly #byUser = new Map<string, Set<Connection>>()
  /** One copy of each account for all its sockets (a user may hold many; 15,000 copies weigh megabytes). */
  readonly #accounts = new Map<string, Account>()
  readonly #streams = new Map<string, LocalStream>()
  /** Sockets per client address, from their admission to their close. */
  readonly #addresses = new Map<string, number>()
  #server?: Server<unknown>

  constructor(
    private readonly deps: {
      sessions: Pick<SessionService, 'authenticate'>
      rooms: RoomService
      chat: ChatService
      presence: PresenceService
      bus: EventBus
      events: EventLog
      feed: EventFeed
      /** Access tokens: verify() answers their claims when valid; expired() tells one that is valid but for its expiry. */
      tokens: { verify(token: string): Promise<VerifiedClaims | undefined>; expired(token: string): Promise<boolean> }
      metrics: Metrics
      log: Logger
      policy: Config['realtime']
    },
  ) {
    deps.bus.onSignal((signal) => this.#relay(signal))
  }

  get sockets(): number {
    return this.#connections.size
  }

  get subscriptions(): number {
    let count = 0
    for (const connection of this.#connections.values()) count += connection.subscriptions.size
    return count
  }

  /** The server whose topics the hub publishes to, once it listens. */
  serveOn(server: Server<unknown>): void {
    this.#server = server
  }

  /**
   * Counts a socket about to be opened for `address`; false when the address holds
   * REALTIME_MAX_SOCKETS_PER_ADDRESS already. Every admission ends in open() or leave().
   */
  admit(address: string): boolean {
    const held = this.#addresses.get(address) ?? 0
    if (held >= this.deps.policy.maxSocketsPerAddress) return false
    this.#addresses.set(address, held + 1)
    return true
  }

  /** An admitted socket that never opened, or one that closed. */
  leave(address: string): void {
    const held = (this.#addresses.get(address) ?? 1) - 1
    if (held > 0) this.#addresses.set(address, held)
    else this.#addresses.delete(address)
  }

  open(socket: Socket, address: string): void {
    const { policy } = this.deps
    const connection: Connection = {
      socket,
      address,
      timer: setTimeout(() => this.#close(connection, 'authTimeout', `authenticate within ${policy.authTimeout} s`), policy.authTimeout * 1000),
      inbox: Promise.resolve(),
      subscriptions: new Map(),
      allowance: policy.messageRate,
      allowanceAt: Date.now(),
      authenticated: false,
      present: false,
      closed: false,
    }
    this.#connections.set(socket, connection)
    if (this.#connections.size > policy.maxSockets) return this.#close(connection, 'serverFull', 'this instance holds as many sockets as it may')
    this.#send(connection, { op: 'hello', auth_timeout_ms: policy.authTimeout * 1000 })
  }

  message(socket: Socket, frame: unknown): void {
    const connection = this.#connections.get(socket)
    if (!connection || connection.closed) return
    if (!this.#allow(connection)) return this.#close(connection, 'rateLimited', `more than ${this.deps.policy.messageRate} frames a second`)
    connection.inbox = connection.inbox
      .then(() => this.#handle(connection, frame))
      .catch((error) => {
        this.deps.log.error('realtime frame failed', { error: String(error) })
        this.#close(connection, 'internalError', 'the event log could not be read')
      })
  }

  closed(socket: Socket): void {
    const connection = this.#connections.get(socket)
    if (!connection) return
    connection.closed = true
    this.#connections.delete(socket)
    this.leave(connection.address)
    clearTimeout(connection.timer)
    for (const stream of connection.subscriptions.keys()) this.#unsubscribe(connection, stream)
    if (connection.userId) {
      const mine = this.#byUser.get(connection.userId)
      mine?.delete(connection)
      if (connection.present && ![...(mine ?? [])].some((other) => other.present)) this.deps.presence.left(connection.userId)
      if (mine?.size === 0) {
        this.#byUser.delete(connection.userId)
        this.#accounts.delete(connection.userId)
      }
      this.#release(userStream(connection.userId))
    }
    this.deps.metrics.realtimeCloses.inc({ reason: connection.closing ?? 'client' })
  }

  /** On shutdown: every socket is told to go elsewhere. */
  drain(): void {
    for (const connection of this.#connections.values()) this.#close(connection, 'serverDraining', 'the server is shutting down; reconnect and resume')
  }

  async #handle(connection: Connection, frame: unknown): Promise<void> {
    if (connection.closed || connection.closing) return
    if (!clientFrameCheck.Check(frame)) return this.#close(connection, 'badFrame', describeBadFrame(frame))
    const { userId } = connection
    if (!connection.authenticated || !userId) {
      if (frame.op !== 'auth') return this.#close(connection, 'unauthorized', 'the first frame is { op: "auth", token }')
      return this.#authenticate(connection, frame.token)
    }
    switch (frame.op) {
      case 'auth':
        return this.#authenticate(connection, frame.token)
      case 'subscribe':
        return this.#subscribe(connection, userId, frame)
      case 'unsubscribe': {
        const stream = streamName(userId, frame.stream)
        this.#unsubscribe(connection, stream)
        return void this.#send(connection, { op: 'unsubscribed', stream })
      }
      case 'ping':
        return void this.#send(connection, { op: 'pong' })
      case 'send':
        return this.#chat(connection, frame)
      case 'typing':
        return this.#typing(connection, userId, frame.room_id)
    }
  }

  /**
   * Tells a room's players that this one is typing: only a player following the room's chat, in an
   * open room, and at most once per TYPING_INTERVAL_MS per socket and room (the rest is dropped, as
   * a client repeats it while its user types). A signal is news, never stored.
   */
  #typing(connection: Connection, userId: string, roomId: string): Promise<void> | void {
    const stream = chatStream(roomId)
    const subscription = connection.subscriptions.get(stream)
    if (subscription?.right !== 'member') return this.#refuse(connection, stream, 'forbidden')
    if (this.#streams.get(stream)?.closed) return this.#refuse(connection, stream, 'conflict')
    const now = Date.now()
    if (subscription.typedAt !== undefined && now - subscription.typedAt < TYPING_INTERVAL_MS) return
    subscription.typedAt = now
    return this.deps.bus.signal({ type: 'typing', room_id: roomId, user_id: userId })
  }

  /**
   * The first auth frame makes the socket its user's; later ones bring a fresh token for the same
   * user before the last one expires. The user's stream is followed before the session is checked,
   * so that a revocation committed in between is seen either by the check or by the stream.
   */
  async #authenticate(connection: Connection, token: string): Promise<void> {
    const claims = await this.deps.tokens.verify(token)
    const first = !connection.authenticated
    if (!claims && (await this.deps.tokens.expired(token))) return this.#close(connection, 'tokenExpired', 'the access token has expired: refresh it and send it again')
    if (!claims || (connection.userId && claims.sub !== connection.userId)) return this.#close(connection, 'unauthorized', 'the access token is not valid')
    if (connection.closed) return
    const stream = userStream(claims.sub)
    if (!connection.userId) {
      const mine = this.#byUser.get(claims.sub) ?? new Set()
      if (mine.size >= this.deps.policy.maxSocketsPerUser)
        return this.#close(connection, 'tooManySockets', `at most ${this.deps.policy.maxSocketsPerUser} sockets per user`)
      this.#byUser.set(claims.sub, mine.add(connection))
      connection.userId = claims.sub
      this.#retain(stream)
    }
    connection.sessionId = claims.sid
    await this.deps.feed.at(stream, () => {})
    // The session itself is checked whatever the account's copy says: this token may be another session's.
    const user = await this.#read(connection, true)
    if (connection.closed) return
    if (!user) return this.#close(connection, 'unauthorized', 'the session has ended or the account is inactive')
    // Recorded before `ready` (a second socket waits for the first's arrival): a client that is ready counts as online in what it subscribes to next.
    if (first) {
      connection.present = true
      await this.deps.presence.arrived(user.user_id)
    }
    if (connection.closed) return
    connection.authenticated = true
    clearTimeout(connection.timer)
    connection.timer = setTimeout(
      () => this.#close(connection, 'tokenExpired', 'the access token expired; send a fresh one before it does'),
      claims.exp * 1000 - Date.now(),
    )
    const expires_at = new Date(claims.exp * 1000).toISOString()
    if (!first) return void this.#send(connection, { op: 'reauthenticated', expires_at })
    this.#send(connection, { op: 'ready', user_id: user.user_id, expires_at, epoch: await this.deps.events.epoch() })
  }

  /**
   * The socket's account as of the last change of its user's rights: the shared copy, or, when a
   * change came since it was read (or `always`), read again with the socket's session until no
   * change comes during the read. Undefined when the session has ended or the account may no
   * longer sign in; a store that cannot answer throws.
   */
  async #read(connection: Connection, always = false): Promise<User | undefined> {
    const { userId, sessionId } = connection
    if (!userId || !sessionId) return undefined
    let account = this.#accounts.get(userId)
    if (!account) this.#accounts.set(userId, (account = { readAt: -1, version: 0 }))
    while (always || account.readAt < account.version) {
      always = false
      const version = account.version
      const user = await refusedAsUndefined(this.deps.sessions.authenticate(sessionId, userId))
      if (!user) return undefined
      // Reads of one account may finish out of order: one begun before another's change never replaces it.
      if (version >= account.readAt) {
        account.user = user
        account.readAt = version
      }
    }
    return account.user
  }

  /**
   * Replays what the client missed (or, when that is gone, says so), then joins the live events.
   * Answers `subscribed` with the last number sent and whether the replay is whole: `recovered:
   * false` means refetch the state over REST, then go on from `last_seq`. Every subscribe is
   * answered once: `error`, or `subscribed` (followed by `unsubscribed` when the right was lost
   * while it caught up, after the event that took it).
   */
  async #subscribe(connection: Connection, userId: string, frame: Extract<ClientFrame, { op: 'subscribe' }>): Promise<void> {
    const stream = streamName(userId, frame.stream)
    const { after, epoch } = frame
    if (connection.subscriptions.has(stream)) return this.#refuse(connection, frame.stream, 'already_subscribed')
    if (connection.subscriptions.size >= this.deps.policy.maxSubscriptions) return this.#refuse(connection, frame.stream, 'too_many_subscriptions')
    if (stream !== userStream(userId) && !ROOM_STREAM.test(stream)) return this.#refuse(connection, frame.stream, 'not_found')

    // Followed first and pending until the right to it is checked: a kick, a withdrawn invitation
    // or a change of role handed over meanwhile marks it doubted (#withdraw), and it is checked again.
    const subscription: Subscription = { live: false }
    connection.subscriptions.set(stream, subscription)
    this.#retain(stream)
    const stillWanted = () => !connection.closed && connection.subscriptions.get(stream) === subscription
    const head = await this.deps.feed.at(stream, (head) => head)
    // A subscriber that starts from now starts at the log's last event, read before the right so that the right reflects it.
    const start = after === undefined ? Math.max(head, await this.deps.events.lastSeq(stream)) : head
    let access: StreamAccess | FrameError
    do {
      subscription.doubted = false
      const user = stillWanted() ? await this.#read(connection) : undefined
      access = user && stillWanted() ? await this.#right(user, stream) : 'not_found'
    } while (subscription.doubted && typeof access !== 'string' && stillWanted())
    if (!stillWanted()) return
    if (typeof access === 'string') {
      this.#unsubscribe(connection, stream)
      return this.#refuse(connection, frame.stream, access)
    }
    subscription.right = access.right
    subscription.until = access.until
    const local = this.#streams.get(stream)
    if (local && access.closed) local.closed = true
    if (access.until !== undefined) local?.invitees.add(connection)

    // Replayed up to `head` here; anything later comes through the stream's chain below, after #act has seen it.
    const currentEpoch = await this.deps.events.epoch()
    const sameEpoch = epoch === undefined || epoch === currentEpoch
    // Corked: a replay goes out in as few writes as fit, not one per event.
    let batchSize = REPLAY_BATCH.first
    const sendAll = (batch: StoredEvent[]) => {
      let chars = 0
      const sent = connection.socket.cork(() =>
        batch.every((stored) => {
          const frame = JSON.stringify(eventFrame(stored))
          chars += frame.length
          return this.#send(connection, frame)
        }),
      )
      // The next batch as big as fits REPLAY_BATCH_CHARS at this batch's size of event.
      if (batch.length > 0) batchSize = Math.max(REPLAY_BATCH.min, Math.min(REPLAY_BATCH.max, Math.floor((REPLAY_BATCH_CHARS * batch.length) / chars)))
      return sent
    }
    let last = start
    let recovered = after === undefined
    const replay = async (upTo: number) => {
      for (;;) {
        const asked = batchSize
        const batch = await this.deps.events.read(stream, last, asked, upTo)
        if (!stillWanted() || !sendAll(batch)) return false
        last = batch.at(-1)?.seq ?? last
        if (batch.length < asked) return true
        await nextTurn()
      }
    }
    if (after !== undefined && sameEpoch && after >= head) {
      // At or past what this instance has handed out: fine if the log has it (this instance may lag a notice behind).
      recovered = after <= (await this.deps.events.lastSeq(stream))
      if (recovered) last = after
    } else if (after !== undefined && sameEpoch) {
      const asked = batchSize
      const missed = await this.deps.events.read(stream, after, asked, head)
      // Events that follow on from `after` mean nothing was lost; a gap means retention took some.
      if (missed[0]?.seq === after + 1) {
        if (!stillWanted() || !sendAll(missed)) return
        last = missed.at(-1)!.seq
        recovered = true
        if (missed.length === asked && !(await nextTurn().then(() => replay(head)))) return
      }
    }
    if (!stillWanted()) return
    // Between two live events: the rest of the log up to the last one handed out here (or up to the
    // event that took the right away), then the topic.
    await this.deps.feed.at(
      stream,
      async (current) => {
        const upTo = Math.min(current, subscription.lostAfter ?? current)
        if ((last < upTo && !(await replay(upTo))) || !stillWanted()) return
        const subscribed: ServerFrame = { op: 'subscribed', stream, last_seq: last, recovered, epoch: currentEpoch }
        if (subscription.lostAfter !== undefined) {
          this.#send(connection, subscribed)
          return this.#unsubscribe(connection, stream, 'access_lost')
        }
        // In the topic from here (this stream's events wait for this step to end; presence frames do not).
        connection.socket.subscribe(stream)
        // A chat starts with who of its players is online, read once the socket hears presence frames, so that none falls between.
        if (stream.startsWith('chat:')) subscribed.online = await this.deps.presence.online(access.players)
        if (!stillWanted()) return
        subscription.live = true
        this.#streams.get(stream)?.live.add(connection)
        this.#send(connection, subscribed)
        // A right lost on another stream while `online` was read: its events stopped at `last` already.
        if (subscription.lostAfter !== undefined) this.#unsubscribe(connection, stream, 'access_lost')
      },
      last,
    )
  }

  /** A new player of a room: whether they are online, to this instance's readers of its chat (their own arrival signal named only the rooms they were in then). */
  async #tellPresence(roomId: string, userId: string): Promise<void> {
    const online = await this.deps.presence.online([userId]).catch(() => [])
    if (online.length > 0) this.#relay({ type: 'presence', user_id: userId, online: true, room_ids: [roomId] })
  }

  /** A signal from any instance, out to this instance's sockets in the chats it concerns. */
  #relay(signal: Signal): void {
    const rooms = signal.type === 'presence' ? signal.room_ids : [signal.room_id]
    for (const roomId of rooms) {
      const topic = chatStream(roomId)
      if (!this.#streams.get(topic)?.live.size) continue
      const frame: ServerFrame =
        signal.type === 'presence'
          ? { op: 'presence', room_id: roomId, user_id: signal.user_id, online: signal.online }
          : { op: 'typing', room_id: roomId, user_id: signal.user_id }
      this.#server?.publish(topic, JSON.stringify(frame), false)
    }
  }

  /** A chat message over the socket: the same rules as POST /rooms/{room_id}/messages, answered with `sent` or an error frame. */
  async #chat(connection: Connection, { room_id, body, client_id }: Extract<ClientFrame, { op: 'send' }>): Promise<void> {
    try {
      const user = await this.#read(connection)
      if (!user) return this.#close(connection, 'sessionEnded', 'the session has ended or the account is inactive')
      const { message } = await this.deps.chat.post(user, room_id, body, client_id)
      this.#send(connection, { op: 'sent', client_id, message_id: message.message_id, seq: message.seq })
    } catch (error) {
      if (!(error instanceof ApiError) || !SEND_ERRORS.has(error.code)) throw error
      this.#send(connection, { op: 'error', error: error.code as FrameError, client_id, message: error.message })
    }
  }

  /**
   * Why `user` may follow `stream`: their own user stream, or a room they are in, are invited to
   * (until the invitation runs out), or administer; else the error that answers the subscribe (an
   * invitee sees the room but not its chat: forbidden, as over REST). A store that cannot answer
   * throws (the socket closes with 1011 rather than being told no).
   */
  async #right(user: User, stream: string): Promise<StreamAccess | FrameError> {
    if (stream === userStream(user.user_id)) return { right: 'member', players: [], closed: false }
    const [kind, roomId] = stream.split(':') as [string, string]
    const access = await refusedAsUndefined(this.deps.rooms.streamAccess(user, roomId))
    if (!access || (access.until !== undefined && access.until <= Date.now())) return 'not_found'
    return kind === 'chat' && access.right === 'invitee' ? 'forbidden' : access
  }

  #unsubscribe(connection: Connection, stream: string, reason?: 'access_lost'): void {
    const subscription = connection.subscriptions.get(stream)
    if (!subscription) return
    connection.subscriptions.delete(stream)
    if (subscription.live && !connection.closed) connection.socket.unsubscribe(stream)
    this.#streams.get(stream)?.live.delete(connection)
    this.#streams.get(stream)?.invitees.delete(connection)
    this.#release(stream)
    if (reason) this.#send(connection, { op: 'unsubscribed', stream, reason })
  }

  #retain(stream: string): void {
    let local = this.#streams.get(stream)
    if (!local) {
      local = { holders: 0, live: new Set(), unchecked: 0, invitees: new Set(), stop: this.deps.feed.follow(stream, (stored) => this.#deliver(stored)) }
      this.#streams.set(stream, local)
    }
    local.holders++
  }

  #release(stream: string): void {
    const local = this.#streams.get(stream)
    if (!local || --local.holders > 0) return
    local.stop()
    this.#streams.delete(stream)
  }

  /** One event of a followed stream, handed over by the feed in order: out to the topic, then acted on. */
  #deliver(stored: StoredEvent): void {
    const { stream } = stored
    const local = this.#streams.get(stream)
    const now = Date.now()
    // An invitation that ran out ends the invitee's view before anything more is sent.
    for (const connection of local?.invitees ?? []) {
      const until = connection.subscriptions.get(stream)?.until
      if (until !== undefined && until <= now) this.#withdraw(connection, stream, stored.seq - 1)
    }
    if (local && local.live.size > 0) {
      const frame = JSON.stringify(eventFrame(stored))
      this.#server?.publish(stream, frame, false)
      this.deps.metrics.realtimeDelivered(local.live.size, (now - Date.parse(stored.created_at)) / 1000)
      this.#checkOutput(local, Buffer.byteLength(frame))
    }
    this.#act(stored)
  }

  /**
   * What an event means for the sockets of this instance: sessions ended, rights to rooms lost.
   * Rights are withdrawn here synchronously, before the next event of the stream goes out.
   */
  #act({ stream, seq, event }: StoredEvent): void {
    const socketsOf = (userId: string) => this.#byUser.get(userId) ?? []
    const userId = stream.startsWith('user:') ? stream.slice('user:'.length) : ''
    /** Withdraws `room` unless the socket's right to it `keeps`; a change told on another stream ends it after what was handed out. */
    const withdraw = (connection: Connection, room: string, keeps: (right: StreamRight) => boolean) => {
      const subscription = connection.subscriptions.get(room)
      if (subscription && !(subscription.right && keeps(subscription.right)))
        this.#withdraw(connection, room, room === stream ? seq : this.deps.feed.head(room))
    }
    switch (event.type) {
      case 'session_revoked':
        for (const connection of socketsOf(userId))
          if (connection.sessionId === event.session_id) this.#close(connection, 'sessionEnded', `the session has ended (${event.reason})`)
        return
      case 'account_changed': {
        if (!event.fields.includes('user_role') && !event.fields.includes('is_active')) return
        // The shared copy of the account is read again when next needed.
        const account = this.#accounts.get(event.user_id)
        if (account) account.version++
        for (const connection of socketsOf(event.user_id))
          for (const room of connection.subscriptions.keys()) if (!room.startsWith('user:')) withdraw(connection, room, (right) => right !== 'admin')
        return
      }
      case 'member_left':
      case 'member_kicked':
        for (const connection of socketsOf(event.user_id)) withdraw(connection, stream, (right) => right === 'admin')
        return
      case 'member_joined':
        if (stream.startsWith('chat:')) return void this.#tellPresence(event.room_id, event.user_id)
        // An invitee who joins is a member now: their invitation's expiry no longer ends their view.
        for (const connection of socketsOf(event.user_id)) {
          const subscription = connection.subscriptions.get(stream)
          if (subscription?.right !== 'invitee') continue
          subscription.right = 'member'
          subscription.until = undefined
          this.#streams.get(stream)?.invitees.delete(connection)
        }
        return
      case 'room_closed': {
        const local = this.#streams.get(stream)
        if (local) local.closed = true
        return
      }
      case 'invitation_revoked':
      case 'invitation_declined':
        // Only the room's stream: an invitee never follows its chat.
        for (const connection of socketsOf(userId)) withdraw(connection, roomStream(event.room_id), (right) => right !== 'invitee')
        return
    }
  }

  /**
   * Takes a stream away from a socket that lost its right to it: at once when it is live (with
   * `unsubscribed`); a subscription still checking its right checks it again; one still catching
   * up ends after `after`, answering `subscribed` then `unsubscribed`.
   */
  #withdraw(connection: Connection, stream: string, after: number): void {
    const subscription = connection.subscriptions.get(stream)
    if (!subscription) return
    if (subscription.right === undefined) subscription.doubted = true
    else if (!subscription.live) subscription.lostAfter ??= after
    else this.#unsubscribe(connection, stream, 'access_lost')
  }

  /** Sends a frame, or closes a socket whose output has piled up past REALTIME_SLOW_CONSUMER_BYTES (Bun would drop it silently). */
  #send(connection: Connection, frame: ServerFrame | string): boolean {
    if (connection.closed) return false
    const status = connection.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame), false)
    if (status > 0 || (status === -1 && connection.socket.getBufferedAmount() <= this.deps.policy.slowConsumerBytes)) return true
    this.#close(connection, 'slowConsumer', 'events were coming faster than this client read them; reconnect and resume')
    return false
  }

  #refuse(connection: Connection, stream: string, error: FrameError): void {
    this.#send(connection, { op: 'error', error, stream })
  }

  /**
   * Topics fan out natively, so a socket's output is looked at here: each time its topic has taken
   * another REALTIME_SLOW_CONSUMER_BYTES / REALTIME_MAX_SUBSCRIPTIONS bytes. However many topics a
   * socket is in, its output cannot pass twice the limit unseen, and Bun's own limit is four times it.
   */
  #checkOutput(local: LocalStream, published: number): void {
    const { slowConsumerBytes, maxSubscriptions } = this.deps.policy
    local.unchecked += published
    if (local.unchecked < slowConsumerBytes / maxSubscriptions) return
    local.unchecked = 0
    for (const connection of local.live)
      if (connection.socket.getBufferedAmount() > slowConsumerBytes)
        this.#close(connection, 'slowConsumer', 'events were coming faster than this client read them; reconnect and resume')
  }

  /** A token bucket of REALTIME_MESSAGE_RATE frames, refilled every second. */
  #allow(connection: Connection): boolean {
    const { messageRate } = this.deps.policy
    const now = Date.now()
    connection.allowance = Math.min(messageRate, connection.allowance + ((now - connection.allowanceAt) / 1000) * messageRate)
    connection.allowanceAt = now
    if (connection.allowance < 1) return false
    connection.allowance -= 1
    return true
  }

  #close(connection: Connection, reason: CloseReason, message: string): void {
    if (connection.closed || connection.closing) return
    connection.closing = reason
    connection.socket.close(CLOSE[reason], message)
  }
}

const eventFrame = ({ stream, seq, event }: StoredEvent): ServerFrame => ({ op: 'event', stream, seq, event })

const ROOM_STREAM = /^(room|chat):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Refusals of a chat message that an error frame carries (others close the socket with 1011). */
const SEND_ERRORS = new Set(['not_found', 'forbidden', 'conflict', 'rate_limited', 'validation_error'])

/** An answer of the service, or undefined when it refused (an ApiError); a store that failed still throws. */
const refusedAsUndefined = <Value>(answer: Promise<Value>): Promise<Value | undefined> =>
  answer.catch((error) => {
    if (error instanceof ApiError) return undefined
    throw error
  })

/** `user` is the caller's own stream. */
const streamName = (userId: string, stream: string) => (stream === 'user' ? userStream(userId) : stream)

/** What is wrong with a frame, without quoting it. */
function describeBadFrame(frame: unknown): string {
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return 'frames are JSON objects with an op'
  const { op } = frame as { op?: unknown }
  if (typeof op !== 'string' || !Object.hasOwn(ClientFrames, op)) return 'unknown op'
  const error = clientFrameCheck.Errors(frame).First()
  return error ? `${op}: ${error.path || '/'} ${error.message}`.slice(0, 120) : `${op}: invalid`
}
