import { BatchedReads } from '../../db/batched-reads'
import { batchRows, inBatches } from '../../db/batches'
import type { Database, Transaction } from '../../db/database'
import { getOrCreateSetting } from '../../db/settings'
import { isoAfter, nowIso } from '../../lib/clock'
import { randomToken } from '../../lib/crypto'
import type { LobbyEvent, StoredEvent } from './model'
import type { EventBus } from './bus'
import type { EventStore, LogRead } from './store'

/** Reads of at most this many events go together with the others of their turn of the event loop (a bigger read goes alone). */
const SHARED_READ_LIMIT = 50

/**
 * Writes lobby events in the transaction of the change they describe, so an event exists exactly
 * when its change does, and reads them back by stream for a client resuming from its last number.
 */
export class EventLog {
  #epoch?: Promise<string>
  /** Each transaction's events, written as it ends. */
  readonly #pending = new WeakMap<Transaction, StoredEvent[]>()
  /** Where each reader that must see every event stands (keepUnreadBy). */
  readonly #readers: Array<() => Promise<number>> = []
  readonly #committed: Array<(stored: StoredEvent) => void> = []
  /** Small reads and streams' last numbers, read together when many are asked for at once (a resume storm). */
  readonly #reads: BatchedReads<string, StoredEvent[]>
  readonly #lastSeqs: BatchedReads<string, number>

  constructor(
    private readonly deps: {
      db: Database
      eventStore: EventStore
      /** Tells every instance's feed what was committed. */
      bus: EventBus
      /** Seconds events are kept. */
      retention: number
      onWritten: (event: LobbyEvent) => void
    },
  ) {
    const { eventStore, db } = deps
    this.#reads = new BatchedReads(async (keys) => {
      const answers = await eventStore.afterEach(keys.map(fromReadKey), db)
      return new Map(keys.map((key, index) => [key, answers[index]!]))
    }, 100)
    this.#lastSeqs = new BatchedReads((streams) => eventStore.lastSeqs(streams, db))
  }

  /**
   * Appends each event to its stream, in `tx`: it takes the stream's next number now, and is
   * written, with its position in the whole log, as `tx` ends; once `tx` commits, the bus takes it
   * to every instance. Answers them as stored, in the order given. Streams are numbered in the
   * order of their names (each holds its counter's row until commit), so that two transactions
   * writing to the same two streams never wait for each other in a circle; one stream's events
   * take their numbers in one statement.
   */
  async emit(tx: Transaction, ...entries: Array<[stream: string, event: LobbyEvent]>): Promise<StoredEvent[]> {
    if (entries.length === 0) return []
    const created_at = nowIso()
    const stored = new Array<StoredEvent>(entries.length)
    const byStream = entries.map((entry, index) => ({ entry, index })).sort((a, b) => (a.entry[0] < b.entry[0] ? -1 : a.entry[0] > b.entry[0] ? 1 : a.index - b.index))
    for (let first = 0, end = 1; first < byStream.length; first = end, end = first + 1) {
      const stream = byStream[first]!.entry[0]
      while (end < byStream.length && byStream[end]!.entry[0] === stream) end++
      const firstSeq = await this.deps.eventStore.nextSeqs(stream, end - first, tx)
      for (let at = first; at < end; at++) {
        const { entry, index } = byStream[at]!
        stored[index] = { stream, seq: firstSeq + (at - first), event: entry[1], created_at }
      }
    }
    this.#written(tx).push(...stored)
    return stored
  }

  /**
   * The events `tx` writes, written as it ends: their positions are taken last, so that a
   * transaction holds its place in the whole log for as short a time as it can, and positions
   * follow the streams' numbers (a transaction that waits for a stream's row takes its positions
   * after the one it waited for).
   */
  #written(tx: Transaction): StoredEvent[] {
    const known = this.#pending.get(tx)
    if (known) return known
    const written: StoredEvent[] = []
    this.#pending.set(tx, written)
    tx.beforeCommit(async () => {
      const { eventStore, bus } = this.deps
      const positions = await eventStore.allocate(written.length, tx)
      written.forEach((stored, index) => (stored.position = positions[index]))
      await eventStore.insert(written, tx)
      await bus.announce(tx, written)
    })
    tx.afterCommit(() => {
      // Forgetting what changed (the principal cache) first: nothing else may keep it from happening.
      for (const listener of this.#committed) for (const stored of written) listener(stored)
      for (const stored of written) this.deps.onWritten(stored.event)
    })
    return written
  }

  /** Hands `listener` each event this instance commits, as its transaction commits (before its caller goes on): what others hear later through the bus. */
  onCommitted(listener: (stored: StoredEvent) => void): void {
    this.#committed.push(listener)
  }

  /** The events of `stream` after `afterSeq` (and up to `upTo`), in order, at most `limit`. */
  async read(stream: string, afterSeq: number, limit = 500, upTo?: number): Promise<StoredEvent[]> {
    if (limit > SHARED_READ_LIMIT) return this.deps.eventStore.after(stream, afterSeq, limit, this.deps.db, upTo)
    return (await this.#reads.read(readKey({ stream, afterSeq, limit, upTo }))) ?? []
  }

  /** Blanks a deleted chat message's text in the log too, in `tx`: the events `seqs` of `stream` that carried it. */
  redactMessage(tx: Transaction, stream: string, seqs: number[]): Promise<void> {
    return this.deps.eventStore.blankBodies(stream, seqs, tx)
  }

  /** The number of the last event written to `stream` (0 for none). */
  async lastSeq(stream: string): Promise<number> {
    return (await this.#lastSeqs.read(stream)) ?? 0
  }

  /**
   * This log's identity, made once per database: sequence numbers from another database (restored
   * from a backup, or started afresh) mean nothing here, and a client that brings them must refetch.
   */
  epoch(): Promise<string> {
    this.#epoch ??= getOrCreateSetting(this.deps.db, 'event_epoch', () => randomToken(12)).then(
      ({ value }) => value,
      (error) => {
        this.#epoch = undefined
        throw error
      },
    )
    return this.#epoch
  }

  /**
   * Keeps every event past the position `reader` answers, however old: a reader that must see
   * each event once (the broker's relay) loses none while it cannot keep up.
   */
  keepUnreadBy(reader: () => Promise<number>): void {
    this.#readers.push(reader)
  }

  /** Deletes events older than EVENT_RETENTION, in batches, except those a reader of the whole log has not read yet. */
  async purge(now = Date.now(), batchSize = batchRows(this.deps.db)): Promise<number> {
    const before = isoAfter(-this.deps.retention, now)
    const readUpTo = this.#readers.length > 0 ? Math.min(...(await Promise.all(this.#readers.map((reader) => reader())))) : undefined
    return inBatches((limit) => this.deps.eventStore.deleteOlderThan(before, limit, this.deps.db, readUpTo), batchSize)
  }
}

const readKey = ({ stream, afterSeq, limit, upTo }: LogRead) => [stream, afterSeq, limit, upTo ?? ''].join('\n')

function fromReadKey(key: string): LogRead {
  const [stream, afterSeq, limit, upTo] = key.split('\n')
  return { stream: stream!, afterSeq: Number(afterSeq), limit: Number(limit), ...(upTo && { upTo: Number(upTo) }) }
}
