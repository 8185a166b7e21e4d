import type { Database, Transaction } from '../../db/database'
import type { StoredEvent } from './model'

/** What a bus says was committed: the event itself, or only its place when it was too big to carry. */
export type Committed = StoredEvent | { stream: string; seq: number; position?: number; event?: undefined }

/** One reader of the bus on this instance: the feed, the broker's relay, the principal cache. */
export interface CommitReader {
  /** A notice of a committed event, in commit order as the engine delivers them. */
  committed(notice: Committed): void
  /** Notices may have been lost (the engine's connection dropped): read the log. */
  lost(): void
  /** The engine's connection delivered something: at least its heartbeat, every `EventBus.heartbeat` ms. */
  heard?(): void
}

/** A reader's place on the bus: which streams it wants notices of. */
export interface Subscription {
  /**
   * The notices of `stream` from now on: a stream's name, every stream of a kind (`user:*`), or
   * every stream (`*`). An engine that delivers by subject (NATS) subscribes to it, and the promise
   * settles once notices flow; one that delivers everything everywhere (PostgreSQL NOTIFY, in
   * process) hands the reader every notice, and the reader keeps what it follows. Either way a
   * reader may also hear streams it did not ask for.
   */
  add(stream: string): Promise<void>
  remove(stream: string): void
  stop(): void
}

/**
 * How committed events reach their readers on every instance. The bus only wakes them; the event
 * log stays the data, so a notice lost on the way costs a read, never an event. Each engine is a
 * class of its own: in process and PostgreSQL here, NATS in nats-bus.ts.
 */
export interface EventBus {
  /**
   * Milliseconds between the heartbeats every reader hears while the engine's connection works
   * (sent while a reader asks for them with `heard`): a reader that must know it misses nothing (a
   * cache) trusts it only while it hears them. Undefined for an engine that cannot lose a notice
   * (in process).
   */
  readonly heartbeatMs?: number
  /** Announces events written in `tx`, to go out once (and only if) it commits. */
  announce(tx: Transaction, events: StoredEvent[]): Promise<void>
  /** Registers a reader of committed events on this instance. */
  read(reader: CommitReader): Subscription
  /**
   * Sends a signal to every instance (this one included): news that is never stored, such as who
   * is typing. With `tx`, it goes out once (and only if) `tx` commits, in commit order.
   */
  signal(signal: Signal, tx?: Transaction): Promise<void>
  /** Where signals go on this instance. */
  onSignal(handler: (signal: Signal) => void): void
  start(): Promise<void>
  stop(): Promise<void>
}

/** Passing news, lost if an instance is down when it is sent: who came online or went, who is typing. */
export type Signal = { type: 'presence'; user_id: string; online: boolean; room_ids: string[] } | { type: 'typing'; user_id: string; room_id: string }

/** Runs `call`; what it throws is thrown again later, on its own, without stopping the caller. */
export function each(call: () => void): void {
  try {
    call()
  } catch (error) {
    queueMicrotask(() => {
      throw error
    })
  }
}

const everywhere = Promise.resolve()

/** The readers of one instance, each handed every notice this instance hears. */
export class Readers {
  readonly #all = new Set<CommitReader>()

  /** A reader of every notice (engines that deliver everything everywhere). */
  add(reader: CommitReader): Subscription {
    this.#all.add(reader)
    return { add: () => everywhere, remove: () => {}, stop: () => this.#all.delete(reader) }
  }

  /** Whether a reader wants heartbeats. */
  get listening(): boolean {
    return [...this.#all].some((reader) => reader.heard !== undefined)
  }

  // One reader that throws never keeps the others from hearing.
  committed(notice: Committed): void {
    for (const reader of this.#all) each(() => reader.committed(notice))
  }

  lost(): void {
    for (const reader of this.#all) each(() => reader.lost())
  }

  heard(): void {
    for (const reader of this.#all) each(() => reader.heard?.())
  }
}

/** One instance on its own store (SQLite): committed events go straight to its readers. */
export class InProcessBus implements EventBus {
  #handler: (signal: Signal) => void = () => {}
  readonly #readers = new Readers()

  async announce(tx: Transaction, events: StoredEvent[]): Promise<void> {
    tx.afterCommit(() => events.forEach((event) => this.#readers.committed(event)))
  }

  read(reader: CommitReader): Subscription {
    return this.#readers.add(reader)
  }

  async signal(signal: Signal, tx?: Transaction): Promise<void> {
    if (tx) tx.afterCommit(() => this.#handler(signal))
    else this.#handler(signal)
  }

  onSignal(handler: (signal: Signal) => void): void {
    this.#handler = handler
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

/**
 * A transaction's notices in as few NOTIFY payloads as fit under PostgreSQL's 8,000 bytes: each
 * event whole, or only its place when it is too big on its own (closing a room with many pending
 * invitations writes one event per invitee).
 */
export function payloads(events: StoredEvent[]): string[] {
  const batches: string[][] = []
  let size = 2
  for (const event of events) {
    let item = JSON.stringify(event)
    if (item.length * 3 > MAX_PAYLOAD) item = JSON.stringify({ stream: event.stream, seq: event.seq })
    const bytes = Buffer.byteLength(item) + 1
    if (batches.length === 0 || size + bytes > MAX_PAYLOAD) {
      batches.push([])
      size = 2
    }
    batches.at(-1)!.push(item)
    size += bytes
  }
  return batches.map((items) => `[${items.join(',')}]`)
}

/**
 * A signal in as many NOTIFY payloads as it takes: a presence signal names every open room of its
 * user, which can be hundreds, so its rooms are split across payloads under the limit.
 */
export function signalPayloads(signal: Signal): string[] {
  const whole = JSON.stringify(signal)
  if (Buffer.byteLength(whole) <= MAX_PAYLOAD || signal.type !== 'presence') return [whole]
  const payloads: string[] = []
  const room = JSON.stringify(signal.room_ids[0] ?? '').length + 1
  const perPayload = Math.max(1, Math.floor((MAX_PAYLOAD - JSON.stringify({ ...signal, room_ids: [] }).length) / room))
  for (let start = 0; start < signal.room_ids.length; start += perPayload)
    payloads.push(JSON.stringify({ ...signal, room_ids: signal.room_ids.slice(start, start + perPayload) }))
  return payloads
}

/** PostgreSQL's NOTIFY payloads must stay under 8,000 bytes. */
const MAX_PAYLOAD = 7900
export const EVENTS_CHANNEL = 'lobby_events'
const SIGNALS_CHANNEL = 'lobby_signals'
/** How often each instance sends an empty notice on the events channel, which every instance hears (itself included). */
export const HEARTBEAT_MS = 1000

/**
 * Every instance on one PostgreSQL: a transaction's events go out as one NOTIFY, which PostgreSQL
 * delivers at commit, in commit order, to every instance LISTENing, on one channel (NOTIFY has no
 * subjects: every instance hears every stream, and its readers keep what they follow). An event
 * too big for a payload goes as its place only, and readers read it from the log. When the
 * listening connection drops, Bun.SQL reconnects it, and the readers then read what they missed.
 */
export class PostgresBus implements EventBus {
  readonly heartbeatMs = HEARTBEAT_MS
  #beating?: Timer
  #stop?: () => Promise<void>
  #stopSignals?: () => Promise<void>
  #handler: (signal: Signal) => void = () => {}
  readonly #readers = new Readers()

  constructor(private readonly db: Database) {}

  read(reader: CommitReader): Subscription {
    return this.#readers.add(reader)
  }

  async announce(tx: Transaction, events: StoredEvent[]): Promise<void> {
    for (const payload of payloads(events)) await tx.get('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload])
  }

  async signal(signal: Signal, tx?: Transaction): Promise<void> {
    for (const payload of signalPayloads(signal)) await (tx ?? this.db).get('SELECT pg_notify($1, $2)', [SIGNALS_CHANNEL, payload])
  }

  onSignal(handler: (signal: Signal) => void): void {
    this.#handler = handler
  }

  async start(): Promise<void> {
    if (!this.db.listen) throw new Error('this store cannot LISTEN')
    this.#stopSignals = await this.db.listen(
      SIGNALS_CHANNEL,
      (payload) => this.#handler(JSON.parse(payload) as Signal),
      () => {},
    )
    let reconnect = false
    this.#stop = await this.db.listen(
      EVENTS_CHANNEL,
      (payload) => {
        this.#readers.heard()
        for (const notice of JSON.parse(payload) as Committed[]) this.#readers.committed(notice)
      },
      () => {
        if (reconnect) this.#readers.lost()
        reconnect = true
      },
    )
    // Proof that the listening connection works, for readers that must know they miss nothing; one at a time.
    if (!this.#readers.listening) return
    let sending = false
    const beat = () => {
      if (sending) return
      sending = true
      void this.db.get('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, '[]']).then(
        () => (sending = false),
        () => (sending = false),
      )
    }
    beat()
    this.#beating = setInterval(beat, HEARTBEAT_MS)
    this.#beating.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#beating)
    await this.#stop?.()
    await this.#stopSignals?.()
  }
}
