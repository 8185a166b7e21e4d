import { deleteInBatches } from '../../db/batches'
import type { Database, Transaction } from '../../db/database'
import { isoAfter, nowIso } from '../../lib/clock'
import type { LobbyEvent, StoredEvent } from './model'
import type { EventBus } from './bus'
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
      /** Where committed events go live, in this process. */
      bus: EventBus
      /** Seconds events are kept. */
      retention: number
    },
  ) {}

  /** Appends each event to its stream, in `tx`; once `tx` commits, they go live on the bus. */
  async emit(tx: Transaction, ...entries: Array<[stream: string, event: LobbyEvent]>): Promise<void> {
    const created_at = nowIso()
    const stored: StoredEvent[] = []
    for (const [stream, event] of entries) stored.push({ stream, seq: await this.deps.eventStore.append(stream, event, created_at, tx), event, created_at })
    if (stored.length > 0) tx.afterCommit(() => stored.forEach((event) => this.deps.bus.publish(event)))
  }

  listen(stream: string, listener: (event: StoredEvent) => void): () => void {
    return this.deps.bus.listen(stream, listener)
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
