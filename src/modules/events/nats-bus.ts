import { connect, type Msg, type NatsConnection, type Subscription as NatsSubscription } from '@nats-io/transport-node'
import { ConfigError } from '../../config'
import type { Transaction } from '../../db/database'
import { type CommitReader, type Committed, type EventBus, each, HEARTBEAT_MS, payloads, Readers, type Signal, type Subscription } from './bus'
import type { StoredEvent } from './model'
import type { LogReader } from './reader'

/** Events the look at the log reads at a time. */
const LOOK_BATCH = 1000
/**
 * A transaction takes its position as it ends, a moment before it commits: the first look starts
 * this many positions back, to cover those still committing when the instance starts (what it
 * hands on twice, readers skip).
 */
const START_MARGIN = 1000
/** How long the instance waits before opening a new connection when NATS closed its own for good. */
const REOPEN_MS = 1000
const STOP_WAIT_MS = 2000

/** A stream's NATS subject: `user:<id>` is `<prefix>.events.user.<id>`; `user:*` and `*` are wildcards. */
export function subjectOf(prefix: string, stream: string): string {
  if (stream === '*') return `${prefix}.events.>`
  if (!/^[a-z]+(:([A-Za-z0-9_-]+|\*))?$/.test(stream)) throw new Error(`no subject for stream ${JSON.stringify(stream)}`)
  return `${prefix}.events.${stream.replace(':', '.')}`
}

/** A transaction's notices by subject: each stream's events in as few messages as fit under the size NOTIFY allows (far under NATS's). */
export function messages(prefix: string, events: StoredEvent[]): Array<[subject: string, message: string]> {
  const byStream = Map.groupBy(events, (event) => event.stream)
  return [...byStream].flatMap(([stream, ofStream]) => payloads(ofStream).map((message): [string, string] => [subjectOf(prefix, stream), message]))
}

interface Held {
  readers: number
  subscription?: NatsSubscription
  /** Settles once the server has the subscription (or the connection dropped, and its return makes every reader read the log). */
  ready: Promise<void>
}

export interface NatsBusOptions {
  url: string
  /** The first token of every subject: deployments (and tests) sharing one NATS server keep apart. */
  prefix: string
  /** Milliseconds between two looks at the log for notices that never went out. */
  lookInterval: number
  log: LogReader
  onError: (message: string, error: unknown) => void
  onInfo: (message: string) => void
}

/**
 * Instances on one PostgreSQL, woken through NATS: each event goes, after its transaction commits,
 * to its stream's subject, and an instance subscribes only to the streams its sockets follow (and
 * the kinds its other readers need: the principal cache every user's stream, the broker relay's
 * leader every stream). NATS delivers at most once, and an instance can die between a commit and
 * its publish, so nothing rests on it alone: when the connection to NATS comes back, every reader
 * reads the log past what it has (as after a dropped LISTEN); and each instance looks at the whole
 * log every `lookInterval` ms, in position order (LogReader), handing its readers what it found at
 * the look before. A notice that never went out is late by two intervals at most, and readers skip
 * what they already have. Readers that must know they miss nothing hear a heartbeat, which this
 * instance sends itself through NATS, only while its looks at the log succeed.
 */
export class NatsBus implements EventBus {
  readonly heartbeatMs = HEARTBEAT_MS
  #connection?: NatsConnection
  #handler: (signal: Signal) => void = () => {}
  readonly #readers = new Readers()
  readonly #held = new Map<string, Held>()
  /** One flush for every subscription made in one turn of the event loop. */
  #flush?: Promise<void>
  readonly #timers: Timer[] = []
  /** This instance's own heartbeat subject. */
  readonly #beat: string
  readonly #servers: string[]
  #stopping = false
  /** The log's position up to which it has been looked at, what the last look found, and when a look last succeeded. */
  #looked = 0
  #found: StoredEvent[] = []
  #looking?: Promise<void>
  #lookedAt = Number.NEGATIVE_INFINITY

  constructor(private readonly options: NatsBusOptions) {
    this.#beat = `${options.prefix}.beat.${crypto.randomUUID()}`
    this.#servers = options.url.split(',')
  }

  read(reader: CommitReader): Subscription {
    const everything = this.#readers.add(reader)
    const own = new Map<string, number>()
    const release = (subject: string) => {
      const count = own.get(subject) ?? 0
      if (count === 0) return
      if (count === 1) own.delete(subject)
      else own.set(subject, count - 1)
      this.#release(subject)
    }
    return {
      add: (stream) => {
        const subject = subjectOf(this.options.prefix, stream)
        own.set(subject, (own.get(subject) ?? 0) + 1)
        return this.#hold(subject)
      },
      remove: (stream) => release(subjectOf(this.options.prefix, stream)),
      stop: () => {
        everything.stop()
        for (const [subject, count] of own) for (let i = 0; i < count; i++) release(subject)
      },
    }
  }

  async announce(tx: Transaction, events: StoredEvent[]): Promise<void> {
    tx.afterCommit(() => {
      for (const [subject, message] of messages(this.options.prefix, events)) this.#publish(subject, message)
    })
  }

  async signal(signal: Signal, tx?: Transaction): Promise<void> {
    const send = () => this.#publish(`${this.options.prefix}.signals`, JSON.stringify(signal))
    if (tx) tx.afterCommit(send)
    else send()
  }

  onSignal(handler: (signal: Signal) => void): void {
    this.#handler = handler
  }

  async start(): Promise<void> {
    const connection = await this.#connect().catch((error: unknown) => {
      // Named without the credentials a URL may carry.
      const where = this.#servers.map((server) => new URL(server).host).join(', ')
      throw new ConfigError([`NATS_URL: no NATS answers at ${where} (${error instanceof Error ? error.message : String(error)})`])
    })
    this.#looked = Math.max(0, (await this.options.log.head()) - START_MARGIN)
    this.#lookedAt = performance.now()
    this.#timers.push(setInterval(() => void this.#look(), this.options.lookInterval))
    if (this.#readers.listening) this.#timers.push(setInterval(() => this.#publish(this.#beat, ''), HEARTBEAT_MS))
    for (const timer of this.#timers) timer.unref()
    this.#open(connection)
  }

  async stop(): Promise<void> {
    this.#stopping = true
    for (const timer of this.#timers) clearInterval(timer)
    await this.#looking
    const connection = this.#connection
    this.#connection = undefined
    if (!connection) return
    const drained = await Promise.race([connection.drain().then(() => true), Bun.sleep(STOP_WAIT_MS).then(() => false)]).catch(() => false)
    if (!drained) await connection.close()
  }

  #connect(): Promise<NatsConnection> {
    // A ping every 5 s, two unanswered and the connection is dropped: a silent NATS is noticed within 15 s.
    return connect({
      servers: this.#servers,
      name: 'sim-gateway',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5000,
      pingInterval: 5000,
      maxPingOut: 2,
    })
  }

  /** Takes `connection` into use: the signals, the heartbeat and every subject held, then watches it. */
  #open(connection: NatsConnection): void {
    this.#connection = connection
    const { prefix } = this.options
    connection.subscribe(`${prefix}.signals`, { callback: guarded((message) => this.#handler(message.json<Signal>())) })
    if (this.#readers.listening)
      connection.subscribe(this.#beat, {
        // Heard only while the looks at the log succeed: they are what covers a notice another instance never sent.
        callback: () => {
          if (performance.now() - this.#lookedAt <= 2 * this.options.lookInterval + HEARTBEAT_MS) this.#readers.heard()
        },
      })
    for (const [subject, held] of this.#held) {
      held.subscription = this.#subscribe(subject)
      held.ready = this.#settled()
    }
    this.#publish(this.#beat, '')
    void this.#watch(connection)
  }

  #hold(subject: string): Promise<void> {
    const held = this.#held.get(subject)
    if (held) {
      held.readers++
      return held.ready
    }
    const fresh: Held = { readers: 1, subscription: this.#subscribe(subject), ready: this.#settled() }
    this.#held.set(subject, fresh)
    return fresh.ready
  }

  #release(subject: string): void {
    const held = this.#held.get(subject)
    if (!held || --held.readers > 0) return
    this.#held.delete(subject)
    held.subscription?.unsubscribe()
  }

  /** Not connected (before the start, or while a new connection is opened): the subject is subscribed to when it is. */
  #subscribe(subject: string): NatsSubscription | undefined {
    const connection = this.#connection
    if (!connection || connection.isClosed()) return undefined
    return connection.subscribe(subject, {
      callback: guarded((message) => {
        for (const notice of message.json<Committed[]>()) this.#readers.committed(notice)
      }),
    })
  }

  /** Settles once the server has every subscription made so far in this turn (a flush after them). */
  #settled(): Promise<void> {
    this.#flush ??= new Promise((resolve) =>
      queueMicrotask(() => {
        this.#flush = undefined
        resolve(this.#connection?.flush().catch(() => {}))
      }),
    )
    return this.#flush
  }

  #publish(subject: string, message: string): void {
    const connection = this.#connection
    if (!connection || connection.isClosed()) return
    try {
      connection.publish(subject, message)
    } catch (error) {
      // The look at the log passes the notice on.
      this.options.onError('a notice could not go out on NATS', error)
    }
  }

  async #watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect') this.options.onInfo('the connection to NATS dropped; reconnecting')
      if (status.type === 'reconnect') {
        this.options.onInfo('the connection to NATS is back; every followed stream reads what it missed')
        // The subscriptions go again first: what commits while the log is read is heard.
        await connection.flush().catch(() => {})
        this.#readers.lost()
      }
    }
    if (!this.#stopping) void this.#reopen(connection)
  }

  /** NATS closed the connection for good (refused credentials, say): a new one, until it is taken; then every reader reads the log. */
  async #reopen(closed: NatsConnection): Promise<void> {
    const error = await closed.closed()
    this.options.onError('the connection to NATS closed; opening a new one', error ?? 'closed')
    this.#connection = undefined
    while (!this.#stopping) {
      await Bun.sleep(REOPEN_MS)
      const connection = await this.#connect().catch(() => undefined)
      if (!connection) continue
      if (this.#stopping) return void connection.close()
      this.#open(connection)
      await connection.flush().catch(() => {})
      this.#readers.lost()
      return
    }
  }

  /** Hands on what the last look found (committed an interval ago at least), then reads what committed since. */
  #look(): Promise<void> {
    this.#looking ??= (async () => {
      try {
        for (const event of this.#found) this.#readers.committed(event)
        this.#found = []
        for (;;) {
          const { events, passed } = await this.options.log.next(this.#looked, LOOK_BATCH)
          this.#found.push(...events)
          this.#looked = passed
          if (events.length < LOOK_BATCH) break
        }
        this.#lookedAt = performance.now()
      } catch (error) {
        this.options.onError('the look at the event log failed', error)
      } finally {
        this.#looking = undefined
      }
    })()
    return this.#looking
  }
}

/** A message handler that throws would stop the client's reader, and this instance would hear nothing more. */
const guarded =
  (handle: (message: Msg) => void) =>
  (_error: unknown, message: Msg): void =>
    each(() => handle(message))
