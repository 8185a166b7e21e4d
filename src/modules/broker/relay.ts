import type { Database, SessionLock } from '../../db/database'
import type { Logger } from '../../lib/logger'
import type { Committed, EventBus, Subscription } from '../events/bus'
import type { StoredEvent } from '../events/model'
import type { LogReader } from '../events/reader'
import { type BrokerMessage, routingKeyOf, SCHEMA_VERSION } from './model'
import type { OutgoingMessage, Publisher } from './publisher'
import type { RelayStore } from './store'

/** Its row in relay_positions. */
export const RELAY = 'amqp'
/** Events read from the log at a time. */
const BATCH = 500
/** How soon to look again when a transaction that took a position before the last one read is still running (doubling while it runs, up to a second). */
const GAP_RETRY_MS = 20
const GAP_RETRY_MAX_MS = 1000
/** How long a stop waits for a pass under way (the publisher's close has cut off its publishes). */
const STOP_WAIT_MS = 1000
/** The longest wait between two attempts while the broker refuses or cannot be reached. */
const MAX_BACKOFF_MS = 30_000

export interface RelayStatus {
  /** leader: this instance publishes; standby: another one does, or will once it can. */
  role: 'leader' | 'standby'
  /** Whether the last attempt to publish succeeded (as this instance knows: a standby says up). */
  broker: 'up' | 'down'
  /** Every event up to this position of the log has been published (or is not for the broker). */
  position: number
  /** Positions of the log past it. */
  lag_events: number
  /** Seconds since the first event past it was written (0 when there is none). */
  lag_seconds: number
}

export interface RelayMetrics {
  published(count: number): void
  failed(): void
}

/**
 * Publishes the events of the log that AMQP_EVENTS allows to the broker, each confirmed, in the
 * log's commit order, and records how far it got once a batch is confirmed. Only what committed is in the
 * log, so nothing rolled back ever leaves; a crash between a confirm and its record publishes those
 * events again with the same message ids, which consumers drop.
 *
 * One instance publishes at a time: whoever holds the session lock (PostgreSQL's advisory lock on
 * a connection of its own; the lone SQLite instance always). The others try to take it over at
 * every poll, so when the holder dies its connection goes and the next poll hands the relay over.
 * It wakes on every commit the bus announces, and polls as well in case a notice was lost.
 */
export class EventRelay {
  #leader = false
  /** The position recorded, as this leader knows it (read again whenever it becomes the leader). */
  #position?: number
  /** The passes under way, if any: one at a time. */
  #running?: Promise<void>
  #again = false
  #failures = 0
  /** When the position was last recorded: passing events not for the broker is recorded once a poll. */
  #recordedAt = 0
  /** Looks in a row that stopped before a position a running transaction may still fill. */
  #gapWaits = 0
  #retryAt = 0
  #stopped = false
  #status: RelayStatus = { role: 'standby', broker: 'up', position: 0, lag_events: 0, lag_seconds: 0 }
  #poll?: Timer
  #retry?: Timer
  #subscription?: Subscription

  constructor(
    private readonly deps: {
      db: Database
      store: RelayStore
      reader: LogReader
      publisher: Publisher
      lock: SessionLock
      bus: EventBus
      /** The routing keys AMQP_EVENTS allows. */
      allowed: Set<string>
      /** The log's identity, the first part of every message id. */
      epoch: () => Promise<string>
      metrics: RelayMetrics
      log: Logger
      /** Milliseconds between two looks without a notice, and between two attempts to take over. */
      pollInterval: number
    },
  ) {}

  get status(): RelayStatus {
    return this.#status
  }

  async start(): Promise<void> {
    // Woken by what it publishes (or by a notice too big to say what it carries); the poll passes the rest.
    const wanted = (notice: Committed) => {
      const routingKey = notice.event && routingKeyOf({ stream: notice.stream, event: notice.event })
      return notice.event === undefined || (routingKey !== undefined && this.deps.allowed.has(routingKey))
    }
    this.#subscription = this.deps.bus.read({ committed: (notice) => wanted(notice) && this.#wake(), lost: () => this.#wake() })
    await this.#tick()
  }

  /** Stops publishing: a publish in flight is cut off (its events go again from the recorded position next time). */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#poll)
    clearTimeout(this.#retry)
    this.#subscription?.stop()
    await this.deps.publisher.close()
    await Promise.race([this.#running, Bun.sleep(STOP_WAIT_MS)])
    await this.deps.lock.release()
  }

  /** Where the relay stands (for /ready): read again, so that a standby instance knows too. */
  async refreshStatus(): Promise<RelayStatus> {
    const { store, reader, db } = this.deps
    const position = this.#leader && this.#position !== undefined ? this.#position : await store.position(RELAY, db.reader)
    const behind = await reader.behind(position)
    this.#status = {
      role: this.#leader ? 'leader' : 'standby',
      broker: this.#failures > 0 ? 'down' : 'up',
      position,
      lag_events: behind.positions,
      lag_seconds: behind.since === undefined ? 0 : Math.max(0, (Date.now() - Date.parse(behind.since)) / 1000),
    }
    return this.#status
  }

  /** Every poll: holds the lock (or learns it is lost, or takes it over), publishes, and measures the lag. */
  async #tick(): Promise<void> {
    try {
      const leader = await this.deps.lock.hold()
      if (leader && !this.#leader) this.deps.log.info('this instance relays the event log to the broker')
      if (!leader && this.#leader) this.deps.log.warn('another instance relays the event log now')
      // A new leader reads where the relay stands: another instance may have moved it on meanwhile.
      if (leader !== this.#leader) this.#position = undefined
      this.#lead(leader)
    } catch (error) {
      this.#lead(false)
      this.deps.log.warn('the relay lock cannot be checked; not publishing until it can', { error: String(error) })
    }
    this.#wake()
    await this.refreshStatus().catch(() => {})
    if (!this.#stopped) this.#poll = setTimeout(() => void this.#tick(), this.deps.pollInterval).unref()
  }

  /** Only the leader hears every stream's notices (a bus that delivers by subject sends them to it alone). */
  #lead(leader: boolean): void {
    if (leader && !this.#leader) void this.#subscription?.add('*')
    if (!leader && this.#leader) this.#subscription?.remove('*')
    this.#leader = leader
  }

  /** Publishes what is new, now or right after the pass under way; not while waiting to retry. */
  #wake(): void {
    if (!this.#leader || this.#stopped || Date.now() < this.#retryAt) return
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = this.#passes().finally(() => (this.#running = undefined))
  }

  async #passes(): Promise<void> {
    do {
      this.#again = false
      try {
        if (await this.#pass()) this.#later(Math.min(GAP_RETRY_MAX_MS, GAP_RETRY_MS * 2 ** this.#gapWaits++))
        else this.#gapWaits = 0
        if (this.#failures > 0) this.deps.log.info('the broker takes events again', { after_failures: this.#failures })
        this.#failures = 0
      } catch (error) {
        if (this.#stopped) return
        this.#failures++
        this.deps.metrics.failed()
        const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.#failures, 10)) * (0.5 + Math.random() / 2)
        if (this.#failures === 1 || this.#failures % 10 === 0)
          this.deps.log.warn('events could not be published; retrying', { error: String(error), failures: this.#failures, retry_in_ms: Math.round(delay) })
        this.#retryAt = Date.now() + delay
        this.#later(delay)
        return
      }
    } while (this.#again && !this.#stopped)
  }

  #later(delay: number): void {
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => {
      this.#retryAt = 0
      this.#wake()
    }, delay).unref()
  }

  /**
   * Publishes the log from the recorded position on, a batch at a time, recording each batch once
   * the broker confirmed all of it. Answers whether it stopped before a position a running
   * transaction may still fill (then it looks again shortly).
   */
  async #pass(): Promise<boolean> {
    const { store, reader, db, allowed } = this.deps
    this.#position ??= await store.position(RELAY, db)
    const epoch = await this.deps.epoch()
    for (;;) {
      const { events, passed, waiting } = await reader.next(this.#position, BATCH)
      const messages = events.flatMap((stored) => {
        const routingKey = routingKeyOf(stored)
        return routingKey !== undefined && allowed.has(routingKey) ? [toMessage(stored, routingKey, epoch)] : []
      })
      await publishInStreamOrder(this.deps.publisher, messages)
      this.deps.metrics.published(messages.length)
      if (passed > this.#position) {
        // After what it published at once; past what it only read (chat, say), once a poll: a relay that
        // takes over from an older record reads those again, and publishes none of them.
        if (messages.length > 0 || Date.now() - this.#recordedAt >= this.deps.pollInterval) {
          await store.record(RELAY, passed, db)
          this.#recordedAt = Date.now()
        }
        this.#position = passed
      }
      if (waiting) return true
      if (events.length < BATCH || this.#stopped || !this.#leader) return false
    }
  }
}

function toMessage(stored: StoredEvent, routingKey: string, epoch: string): OutgoingMessage {
  const id = `${epoch}:${stored.stream}:${stored.seq}`
  const body: BrokerMessage = {
    schema_version: SCHEMA_VERSION,
    id,
    stream: stored.stream,
    seq: stored.seq,
    position: stored.position!,
    occurred_at: stored.created_at,
    event: stored.event,
  }
  return { routingKey, id, type: stored.event.type, stream: stored.stream, body }
}

/**
 * Publishes a batch: the streams side by side, each stream's messages one after another, the next
 * sent once the broker confirmed the one before. A message refused or cut off mid-stream stops its
 * stream there, so a retry never lets a consumer see a stream's events out of order (after dropping
 * the repeats). Rejects when any message was not confirmed.
 */
async function publishInStreamOrder(publisher: Publisher, messages: OutgoingMessage[]): Promise<void> {
  const byStream = Map.groupBy(messages, (message) => message.stream)
  const outcomes = await Promise.allSettled(
    [...byStream.values()].map(async (stream) => {
      for (const message of stream) await publisher.publish(message)
    }),
  )
  const failure = outcomes.find((outcome) => outcome.status === 'rejected')
  if (failure) throw failure.reason
}
