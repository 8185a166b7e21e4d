import { nextTurn } from '../../db/batches'
import type { Committed, EventBus, Subscription } from './bus'
import type { StoredEvent } from './model'
import type { EventLog } from './service'

type Listener = (event: StoredEvent) => void

interface Followed {
  /** The number of the last event handed on; every later one is handed on in order, none twice. */
  head: number
  /** Whether `head` has been read from the log (the first step of every stream does it). */
  started: boolean
  /**
   * Settles once the bus delivers the stream's notices, and the head is read after it, so that no
   * notice falls between (should one still, as when the connection drops meanwhile, the bus's
   * catch-up or its look at the log hands it on).
   */
  subscribed: Promise<void>
  /** A catch-up is scheduled after a failed read (one at a time, however many notices fail). */
  retrying: boolean
  /** Work on the stream runs one step after another: arrivals, gap filling, joins. */
  chain: Promise<void>
  listeners: Set<Listener>
}

const ignore = () => {}

/** Events read from the log at a time when filling a gap. */
const BATCH = 500
/** How long a stream whose log could not be read waits before trying again. */
const RETRY_MS = 1000

/**
 * The committed events of the streams followed on this instance, each handed to the stream's
 * listeners exactly once and in stream order, however they arrived: a bus may skip (a listener
 * connection that dropped) or repeat, and the event log fills whatever is missing.
 */
export class EventFeed {
  readonly #streams = new Map<string, Followed>()
  /** Its place on the bus: the streams followed here. */
  readonly #bus: Subscription

  constructor(private readonly deps: { log: Pick<EventLog, 'read' | 'lastSeq'>; bus: EventBus; onError: (error: unknown, stream: string) => void }) {
    this.#bus = deps.bus.read({ committed: (notice) => this.committed(notice), lost: () => this.catchUp() })
  }

  /** Hands `listener` every event of `stream` committed after the moment it starts following; answers how to stop. */
  follow(stream: string, listener: Listener): () => void {
    let followed = this.#streams.get(stream)
    if (!followed) {
      followed = { head: 0, started: false, subscribed: this.#bus.add(stream), retrying: false, chain: Promise.resolve(), listeners: new Set() }
      followed.chain = this.#step(stream, followed, () => {})
      this.#streams.set(stream, followed)
    }
    const listeners = followed.listeners
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0 && this.#streams.get(stream)?.listeners === listeners) {
        this.#streams.delete(stream)
        this.#bus.remove(stream)
      }
    }
  }

  /**
   * Runs `work` between two hand-overs of a followed stream's events, with the number of the last
   * one handed on (read up to `atLeast` first): a subscriber reads the log up to it and joins the
   * live ones, with nothing lost or doubled in between.
   */
  at<Result>(stream: string, work: (head: number) => Result | Promise<Result>, atLeast = 0): Promise<Result> {
    const followed = this.#streams.get(stream)
    if (!followed) throw new Error(`${stream} is not followed`)
    const done = followed.chain
      .then(() => this.#start(stream, followed))
      .then(() => (followed.head < atLeast ? this.#fill(stream, followed, atLeast) : undefined))
      .then(() => work(followed.head))
    followed.chain = done.then(ignore, ignore)
    return done
  }

  /** The number of the last event of a followed stream handed on (0 when it is not followed). */
  head(stream: string): number {
    return this.#streams.get(stream)?.head ?? 0
  }

  /** An event committed on some instance: handed on if it is the next one; after a gap, the log fills it first. */
  committed(notice: Committed): void {
    const followed = this.#streams.get(notice.stream)
    if (!followed) return
    followed.chain = this.#step(notice.stream, followed, async () => {
      if (notice.seq <= followed.head) return
      if (notice.seq === followed.head + 1 && notice.event) return this.#handOn(followed, notice)
      await this.#fill(notice.stream, followed, notice.seq)
    })
  }

  /** After the bus may have missed events (its connection dropped): every followed stream reads the log past its head. */
  catchUp(): void {
    for (const [stream, followed] of this.#streams) followed.chain = this.#step(stream, followed, () => this.#fill(stream, followed))
  }

  /** Hands on what the log holds after the head, up to `upTo` when given. */
  async #fill(stream: string, followed: Followed, upTo?: number): Promise<void> {
    for (;;) {
      const batch = await this.deps.log.read(stream, followed.head, BATCH, upTo)
      for (const stored of batch) this.#handOn(followed, stored)
      if (batch.length < BATCH || (upTo !== undefined && followed.head >= upTo)) return
      await nextTurn()
    }
  }

  async #start(stream: string, followed: Followed): Promise<void> {
    if (followed.started) return
    await followed.subscribed
    followed.head = await this.deps.log.lastSeq(stream)
    followed.started = true
  }

  #handOn(followed: Followed, stored: StoredEvent): void {
    followed.head = stored.seq
    for (const listener of followed.listeners) listener(stored)
  }

  /**
   * Chains `work` on the stream, after reading its head if that is still to do. When the log
   * cannot be read, logs it and tries to catch up again a little later.
   */
  #step(stream: string, followed: Followed, work: () => Promise<void> | void): Promise<void> {
    const run = async () => {
      await this.#start(stream, followed)
      await work()
    }
    return followed.chain.then(run).catch((error) => {
      this.deps.onError(error, stream)
      if (followed.retrying) return
      followed.retrying = true
      setTimeout(() => {
        followed.retrying = false
        if (this.#streams.get(stream) === followed) followed.chain = this.#step(stream, followed, () => this.#fill(stream, followed))
      }, RETRY_MS).unref()
    })
  }
}
