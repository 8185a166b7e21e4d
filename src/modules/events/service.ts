import { deleteInBatches } from '../../db/batches'
import type { Database, Transaction } from '../../db/database'
import { isoAfter, nowIso } from '../../lib/clock'
import type { LobbyEvent, StoredEvent } from './model'
import type { EventStore } from './store'

/**
 * Writes lobby events in the transaction of the change they describe, so an event exists exactly
 * when its change does, and reads them back by stream for a client resuming from its last number.
 */
export class EventLog {
  constructor(
    private readonly deps: {
      db: Database
      eventStore: EventStore
      /** Seconds events are kept. */
      retention: number
    },
  ) {}

  /** Appends each event to its stream, in `tx`. */
  async emit(tx: Transaction, ...entries: Array<[stream: string, event: LobbyEvent]>): Promise<void> {
    const now = nowIso()
    for (const [stream, event] of entries) await this.deps.eventStore.append(stream, event, now, tx)
  }

  read(stream: string, afterSeq: number, limit = 500): Promise<StoredEvent[]> {
    return this.deps.eventStore.after(stream, afterSeq, limit, this.deps.db)
  }

  /** Deletes events older than EVENT_RETENTION, in batches. */
  purge(now = Date.now(), batchSize = 1000): Promise<number> {
    const before = isoAfter(-this.deps.retention, now)
    return deleteInBatches((limit) => this.deps.eventStore.deleteOlderThan(before, limit, this.deps.db), batchSize)
  }
}
