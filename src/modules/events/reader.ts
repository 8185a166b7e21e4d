import type { Database } from '../../db/database'
import type { StoredEvent } from './model'
import type { EventStore } from './store'

/** PostgreSQL's pg_current_snapshot(): transactions below xmin are over; those listed in xip were running. */
interface Snapshot {
  xmin: bigint
  running: bigint[]
}

/**
 * Reads the whole log in position order, for a reader that must see every committed event once,
 * whatever its stream: the relay of domain events, a cache of sessions. A position is allocated as
 * its transaction ends, so on PostgreSQL a transaction may commit after another that took a higher
 * position: the reader never passes a missing position while a transaction that may fill it is
 * still running. It remembers which transactions were running when it found the gap, and once all
 * of them are over, a position still missing was rolled back (or purged) and is passed.
 *
 * On SQLite transactions commit one at a time and a rollback gives its positions back, so there
 * is never such a gap to wait for.
 */
export class LogReader {
  /** A gap found below `upTo`, and the transactions running then: once they are over, it is passed. */
  #gap?: { upTo: number; running: bigint[] }

  constructor(private readonly deps: { db: Database; eventStore: EventStore }) {}

  /**
   * Up to `limit` events after `after`, in position order, stopping before a position that a
   * running transaction may still fill. `passed` is where to go on from: the last position handed
   * on, or past a gap known to stay empty. `waiting`: it stopped before such a gap, and a look a
   * moment later will go further.
   */
  async next(after: number, limit: number): Promise<{ events: StoredEvent[]; passed: number; waiting: boolean }> {
    const { db, eventStore } = this.deps
    const rows = await eventStore.afterPosition(after, limit, db)
    if (db.dialect !== 'postgres') return { events: rows, passed: rows.at(-1)?.position ?? after, waiting: false }
    // Taken after the rows: a transaction that took a missing position before the highest seen one was already running.
    const snapshot = await this.#snapshot()
    const events: StoredEvent[] = []
    let passed = after
    for (const stored of rows) {
      const position = stored.position!
      if (position > passed + 1) {
        const gap = this.#gap
        const covered = gap !== undefined && position - 1 <= gap.upTo
        const over = gap !== undefined && gap.running.every((xid) => xid < snapshot.xmin)
        if (!(covered && over)) {
          // Wait for the transactions running now, unless those of an earlier look at this gap still run.
          if (!covered || over) this.#gap = { upTo: rows.at(-1)!.position!, running: snapshot.running }
          break
        }
      }
      events.push(stored)
      passed = position
    }
    if (this.#gap && passed >= this.#gap.upTo) this.#gap = undefined
    return { events, passed, waiting: events.length < rows.length }
  }

  async #snapshot(): Promise<Snapshot> {
    const row = await this.deps.db.get<{ snapshot: string }>('SELECT pg_current_snapshot()::text AS snapshot')
    const [xmin, , running] = row!.snapshot.split(':') as [string, string, string]
    return { xmin: BigInt(xmin), running: running ? running.split(',').map(BigInt) : [] }
  }
}
