import type { Config } from '../../config'
import { nextTurn } from '../../db/batches'
import type { Metrics } from '../../metrics'
import type { EventBus } from '../events/bus'
import type { EventFeed } from '../events/feed'
import { type StoredEvent, userStream } from '../events/model'
import type { EventLog } from '../events/service'
import type { SessionService } from '../sessions/service'
import type { VerifiedClaims } from '../sessions/tokens'
import type { User } from '../users/model'
import type { PresenceService } from './presence/service'
import type { ClientFrame, FrameError, ServerFrame } from './protocol'
import type { Access, Client, HubControl, Ops, StreamKind } from './streams/kind'
import { refusedAsUndefined } from './streams/rooms'
import type { Link, Socket, Transport } from './transport'

interface Subscription {
  /** In the stream's topic, getting live events (after catching up from the log). */
  live: boolean
  /** Why the user may follow it; undefined while that is being checked. */
  right?: string
  /** For an invitee: when the invitation runs out (ms since the epoch). */
  until?: number
  /** A change of rights came while the right was being checked: it is checked again. */
  doubted?: boolean
  /** The right was lost while the subscription caught up: it ends after this number, with `subscribed` then `unsubscribed`. */
  lostAfter?: number
}

/** A user's account, shared by their sockets here, with the version of their rights it was read at. */
interface Account {
  user?: User
  /** The version of the user's rights this copy was read at. */
  readAt: number
  /** Bumped by each change of role or status the user's stream brings: a copy read before the last one is read again. */
  version: number
}

/** A websocket and what the hub knows of it: whose it is, which session, what it follows. */
interface Connection extends Link {
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
  subscriptions: Map<string, Subscription>
}

/** A stream followed on this instance: by the sockets subscribed to it, and by its user's sockets for control. */
interface LocalStream {
  kind: StreamKind
  holders: number
  stop: () => void
  /** The sockets in its topic. */
  live: Set<Connection>
  /** Sockets whose right to it runs out (an invitee's), looked at before each of its events. */
  expiring: Set<Connection>
  /** Its source has ended (a closed room): nothing more is written or typed there. */
  ended?: boolean
}

/**
 * A subscriber catches up in batches of about this many characters of frames, with a turn of the
 * event loop between: a batch is read, parsed and sent in one go (synchronously on SQLite), so its
 * size, not its count of events, is what holds the other requests.
 */
const REPLAY_BATCH_CHARS = 32 * 1024
/** Events in a batch: the first, the fewest and the most. */
const REPLAY_BATCH = { first: 16, min: 4, max: 500 }
/**
 * The websockets of this instance and the streams they follow; it knows no domain. Each stream
 * followed here is a Bun topic: the feed hands its events over once, in order, and the transport
 * fans each out to the topic's sockets natively. A subscriber first catches up from the log on its
 * own, then joins the topic between two events. Who may follow a stream, and what its events mean
 * for the sockets here, is its kind's to say (streams/, wired in from outside).
 */
export class RealtimeHub {
  readonly #connections = new Map<Socket, Connection>()
  readonly #byUser = new Map<string, Set<Connection>>()
  /** One copy of each account for all its sockets (a user may hold many; 15,000 copies weigh megabytes). */
  readonly #accounts = new Map<string, Account>()
  readonly #streams = new Map<string, LocalStream>()
  /** What kinds may do to the sockets here. */
  readonly #control: HubControl

  constructor(
    private readonly deps: {
      transport: Transport
      /** The kinds of stream, the user's own first. */
      kinds: StreamKind[]
      /** The client frames a kind handles beyond subscribing (the chat's). */
      ops: Ops
      sessions: Pick<SessionService, 'authenticate'>
      presence: Pick<PresenceService, 'arrived' | 'left'>
      bus: Pick<EventBus, 'onSignal'>
      events: EventLog
      feed: EventFeed
      /** Access tokens: verify() answers their claims when valid; expired() tells one that is valid but for its expiry. */
      tokens: { verify(token: string): Promise<VerifiedClaims | undefined>; expired(token: string): Promise<boolean> }
      metrics: Metrics
      policy: Config['realtime']
    },
  ) {
    this.#control = this.#controls()
    deps.bus.onSignal((signal) => {
      for (const kind of deps.kinds) kind.signal?.(signal, this.#control)
    })
  }

  get sockets(): number {
    return this.#connections.size
  }

  get subscriptions(): number {
    let count = 0
    for (const connection of this.#connections.values()) count += connection.subscriptions.size
    return count
  }

  open(socket: Socket, address: string): void {
    const { policy, transport } = this.deps
    const connection: Connection = {
      ...transport.link(socket, address),
      timer: setTimeout(() => transport.close(connection, 'authTimeout', `authenticate within ${policy.authTimeout} s`), policy.authTimeout * 1000),
      subscriptions: new Map(),
      authenticated: false,
      present: false,
    }
    this.#connections.set(socket, connection)
    if (this.#connections.size > policy.maxSockets) return transport.close(connection, 'serverFull', 'this instance holds as many sockets as it may')
    transport.send(connection, { op: 'hello', auth_timeout_ms: policy.authTimeout * 1000 })
  }

  message(socket: Socket, frame: unknown): void {
    const connection = this.#connections.get(socket)
    if (connection) this.deps.transport.receive(connection, frame, (valid) => this.#handle(connection, valid))
  }

  closed(socket: Socket): void {
    const connection = this.#connections.get(socket)
    if (!connection) return
    this.#connections.delete(socket)
    this.deps.transport.closed(connection)
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
  }

  /** On shutdown: every socket is told to go elsewhere. */
  drain(): void {
    for (const connection of this.#connections.values())
      this.deps.transport.close(connection, 'serverDraining', 'the server is shutting down; reconnect and resume')
  }

  async #handle(connection: Connection, frame: ClientFrame): Promise<void> {
    const { userId } = connection
    const { transport, ops } = this.deps
    if (!connection.authenticated || !userId) {
      if (frame.op !== 'auth') return transport.close(connection, 'unauthorized', 'the first frame is { op: "auth", token }')
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
        return void transport.send(connection, { op: 'unsubscribed', stream })
      }
      case 'ping':
        return void transport.send(connection, { op: 'pong' })
      case 'send':
        return ops.send(frame, this.#client(connection, userId))
      case 'typing':
        return ops.typing(frame, this.#client(connection, userId))
    }
  }

  /** The socket as a kind's ops see it. */
  #client(connection: Connection, userId: string): Client {
    return {
      link: connection,
      userId,
      account: () => this.#read(connection),
      rightTo: (stream) => connection.subscriptions.get(stream)?.right,
      ended: (stream) => this.#streams.get(stream)?.ended === true,
    }
  }

  /**
   * The first auth frame makes the socket its user's; later ones bring a fresh token for the same
   * user before the last one expires. The user's stream is followed before the session is checked,
   * so that a revocation committed in between is seen either by the check or by the stream.
   */
  async #authenticate(connection: Connection, token: string): Promise<void> {
    const claims = await this.deps.tokens.verify(token)
    const first = !connection.authenticated
    if (!claims && (await this.deps.tokens.expired(token))) return this.deps.transport.close(connection, 'tokenExpired', 'the access token has expired: refresh it and send it again')
    if (!claims || (connection.userId && claims.sub !== connection.userId)) return this.deps.transport.close(connection, 'unauthorized', 'the access token is not valid')
    if (connection.closed) return
    // The client authenticated in time; what remains is this instance's work, however long a storm of reconnections makes it.
    if (first) clearTimeout(connection.timer)
    const stream = userStream(claims.sub)
    if (!connection.userId) {
      const mine = this.#byUser.get(claims.sub) ?? new Set()
      if (mine.size >= this.deps.policy.maxSocketsPerUser)
        return this.deps.transport.close(connection, 'tooManySockets', `at most ${this.deps.policy.maxSocketsPerUser} sockets per user`)
      this.#byUser.set(claims.sub, mine.add(connection))
      connection.userId = claims.sub
      // Its user's stream, followed for control (sessions ended, rights changed) as long as the socket lives.
      this.#retain(stream, this.#kindOf(stream, claims.sub)!)
    }
    connection.sessionId = claims.sid
    await this.deps.feed.at(stream, () => {})
    // The session itself is checked whatever the account's copy says: this token may be another session's.
    const user = await this.#read(connection, true)
    if (connection.closed) return
    if (!user) return this.deps.transport.close(connection, 'unauthorized', 'the session has ended or the account is inactive')
    // Recorded before `ready` (a second socket waits for the first's arrival): a client that is ready counts as online in what it subscribes to next.
    if (first) {
      connection.present = true
      await this.deps.presence.arrived(user.user_id)
    }
    if (connection.closed) return
    connection.authenticated = true
    clearTimeout(connection.timer)
    connection.timer = setTimeout(
      () => this.deps.transport.close(connection, 'tokenExpired', 'the access token expired; send a fresh one before it does'),
      claims.exp * 1000 - Date.now(),
    )
    const expires_at = new Date(claims.exp * 1000).toISOString()
    if (!first) return void this.deps.transport.send(connection, { op: 'reauthenticated', expires_at })
    this.deps.transport.send(connection, { op: 'ready', user_id: user.user_id, expires_at, epoch: await this.deps.events.epoch() })
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
    if (connection.subscriptions.has(stream)) return this.deps.transport.refuse(connection, frame.stream, 'already_subscribed')
    if (connection.subscriptions.size >= this.deps.policy.maxSubscriptions) return this.deps.transport.refuse(connection, frame.stream, 'too_many_subscriptions')
    const kind = this.#kindOf(stream, userId)
    if (!kind) return this.deps.transport.refuse(connection, frame.stream, 'not_found')

    // Followed first and pending until the right to it is checked: a kick, a withdrawn invitation
    // or a change of role handed over meanwhile marks it doubted (#withdraw), and it is checked again.
    const subscription: Subscription = { live: false }
    connection.subscriptions.set(stream, subscription)
    this.#retain(stream, kind)
    const stillWanted = () => !connection.closed && connection.subscriptions.get(stream) === subscription
    const head = await this.deps.feed.at(stream, (head) => head)
    // A subscriber that starts from now starts at the log's last event, read before the right so that the right reflects it.
    const start = after === undefined ? Math.max(head, await this.deps.events.lastSeq(stream)) : head
    let access: Access | FrameError
    do {
      subscription.doubted = false
      const user = stillWanted() ? await this.#read(connection) : undefined
      access = user && stillWanted() ? await kind.right(user, stream) : 'not_found'
    } while (subscription.doubted && typeof access !== 'string' && stillWanted())
    if (!stillWanted()) return
    if (typeof access === 'string') {
      this.#unsubscribe(connection, stream)
      return this.deps.transport.refuse(connection, frame.stream, access)
    }
    subscription.right = access.right
    subscription.until = access.until
    const local = this.#streams.get(stream)
    if (local && access.ended) local.ended = true
    if (access.until !== undefined) local?.expiring.add(connection)

    // Replayed up to `head` here; anything later comes through the stream's chain below, after its kind has acted on it.
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
          return this.deps.transport.send(connection, frame)
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
          this.deps.transport.send(connection, subscribed)
          return this.#unsubscribe(connection, stream, 'access_lost')
        }
        // In the topic from here (this stream's events wait for this step to end; presence frames do not).
        connection.socket.subscribe(stream)
        // What the kind adds (a chat: who is online), read once the socket hears its live frames, so that none falls between.
        if (kind.greet) Object.assign(subscribed, await kind.greet(access))
        if (!stillWanted()) return
        subscription.live = true
        this.#streams.get(stream)?.live.add(connection)
        this.deps.transport.send(connection, subscribed)
        // A right lost on another stream while `online` was read: its events stopped at `last` already.
        if (subscription.lostAfter !== undefined) this.#unsubscribe(connection, stream, 'access_lost')
      },
      last,
    )
  }

  #unsubscribe(connection: Connection, stream: string, reason?: 'access_lost'): void {
    const subscription = connection.subscriptions.get(stream)
    if (!subscription) return
    connection.subscriptions.delete(stream)
    if (subscription.live && !connection.closed) connection.socket.unsubscribe(stream)
    this.#streams.get(stream)?.live.delete(connection)
    this.#streams.get(stream)?.expiring.delete(connection)
    this.#release(stream)
    if (reason) this.deps.transport.send(connection, { op: 'unsubscribed', stream, reason })
  }

  #retain(stream: string, kind: StreamKind): void {
    let local = this.#streams.get(stream)
    if (!local) {
      local = { kind, holders: 0, live: new Set(), expiring: new Set(), stop: this.deps.feed.follow(stream, (stored) => this.#deliver(stored)) }
      this.#streams.set(stream, local)
    }
    local.holders++
  }

  #release(stream: string): void {
    const local = this.#streams.get(stream)
    if (!local || --local.holders > 0) return
    local.stop()
    this.#streams.delete(stream)
    this.deps.transport.forget(stream)
  }

  /** One event of a followed stream, handed over by the feed in order: out to the topic, then acted on by its kind. */
  #deliver(stored: StoredEvent): void {
    const { stream } = stored
    const local = this.#streams.get(stream)
    if (!local) return
    const now = Date.now()
    // A right that ran out (an invitation's) ends before anything more is sent.
    for (const connection of local.expiring) {
      const until = connection.subscriptions.get(stream)?.until
      if (until !== undefined && until <= now) this.#withdraw(connection, stream, stored.seq - 1)
    }
    if (local.live.size > 0) {
      this.deps.transport.publish(stream, JSON.stringify(eventFrame(stored)), local.live)
      this.deps.metrics.realtimeDelivered(local.live.size, (now - Date.parse(stored.created_at)) / 1000)
    }
    local.kind.react(stored, this.#control)
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

  /** What kinds may do to the sockets here (HubControl): rights withdrawn synchronously, before the next event of the stream goes out. */
  #controls(): HubControl {
    const socketsOf = (userId: string) => this.#byUser.get(userId) ?? []
    return {
      withdraw: (userId, stream, keeps, after) => {
        for (const connection of socketsOf(userId)) {
          const right = connection.subscriptions.get(stream)?.right
          if (connection.subscriptions.has(stream) && !(right && keeps(right))) this.#withdraw(connection, stream, after)
        }
      },
      streamsOf: (userId) => new Set([...socketsOf(userId)].flatMap((connection) => [...connection.subscriptions.keys()])),
      head: (stream) => this.deps.feed.head(stream),
      endSession: (userId, sessionId, reason) => {
        for (const connection of socketsOf(userId))
          if (connection.sessionId === sessionId) this.deps.transport.close(connection, 'sessionEnded', `the session has ended (${reason})`)
      },
      rightsChanged: (userId) => {
        // The shared copy of the account is read again when next needed.
        const account = this.#accounts.get(userId)
        if (account) account.version++
      },
      settle: (userId, stream, right) => {
        for (const connection of socketsOf(userId)) {
          const subscription = connection.subscriptions.get(stream)
          if (subscription?.until === undefined) continue
          subscription.right = right
          subscription.until = undefined
          this.#streams.get(stream)?.expiring.delete(connection)
        }
      },
      end: (stream) => {
        const local = this.#streams.get(stream)
        if (local) local.ended = true
      },
      publish: (topic, frame) => {
        const live = this.#streams.get(topic)?.live
        if (live?.size) this.deps.transport.publish(topic, frame, live)
      },
    }
  }

  /** The kind `stream` is of, for a socket of `userId`. */
  #kindOf(stream: string, userId: string): StreamKind | undefined {
    return this.deps.kinds.find((kind) => kind.owns(stream, userId))
  }
}

const eventFrame = ({ stream, seq, event }: StoredEvent): ServerFrame => ({ op: 'event', stream, seq, event })

/** `user` is the caller's own stream. */
const streamName = (userId: string, stream: string) => (stream === 'user' ? userStream(userId) : stream)
