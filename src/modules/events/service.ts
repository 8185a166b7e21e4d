import { inBatches } from '../../db/batches'
import type { Database, Transaction } from '../../db/database'
import { getOrCreateSetting } from '../../db/settings'
import { isoAfter, nowIso } from '../../lib/clock'
import { randomToken } from '../../lib/crypto'
import type { LobbyEvent, StoredEvent } from './model'
import type { EventBus } from './bus'
import type { EventStore } from './store'

/**
 * Writes lobby events in the transaction of the change they describe, so an event exists exactly
 * when its change does, and reads them back by stream for a client resuming from its last number.
 */
export class EventLog {
  #epoch?: Promise<string>

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
  ) {}

  /** Appends each event to its stream, in `tx`; once `tx` commits, the bus takes them to every instance. Answers them as stored. */
  async emit(tx: Transaction, ...entries: Array<[stream: string, event: LobbyEvent]>): Promise<StoredEvent[]> {
    if (entries.length === 0) return []
    const created_at = nowIso()
    const stored: StoredEvent[] = []
    for (const [stream, event] of entries) stored.push({ stream, seq: await this.deps.eventStore.append(stream, event, created_at, tx), event, created_at })
    await this.deps.bus.announce(tx, stored)
    tx.afterCommit(() => entries.forEach(([, event]) => this.deps.onWritten(event)))
    return stored
  }

  read(stream: string, afterSeq: number, limit = 500, upTo?: number): Promise<StoredEvent[]> {
    return this.deps.eventStore.after(stream, afterSeq, limit, this.deps.db, upTo)
  }

  /** Blanks a deleted chat message's text in the log too, in `tx`: the events `seqs` of `stream` that carried it. */
  redactMessage(tx: Transaction, stream: string, seqs: number[]): Promise<void> {
    return this.deps.eventStore.blankBodies(stream, seqs, tx)
  }

  /** The number of the last event written to `stream` (0 for none). */
  lastSeq(stream: string): Promise<number> {
    return this.deps.eventStore.lastSeq(stream, this.deps.db)
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

  /** Deletes events older than EVENT_RETENTION, in batches. */
  purge(now = Date.now(), batchSize = 1000): Promise<number> {
    const before = isoAfter(-this.deps.retention, now)
    return inBatches((limit) => this.deps.eventStore.deleteOlderThan(before, limit, this.deps.db), batchSize)
  }
}
