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
    if (db.dialect !== 'postgres') {
      const rows = await eventStore.afterPosition(after, limit, db.reader)
      return { events: rows, passed: rows.at(-1)?.position ?? after, waiting: false }
    }
    // One statement, one snapshot: a transaction it says is over shows its rows here, and one that took
    // a missing position (before a visible one committed) had started, so it is among those it says run.
    const { events: rows, snapshot: text } = await eventStore.afterPositionInSnapshot(after, limit, db)
    const snapshot = parseSnapshot(text)
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

  /** The last position written now: where a reader that wants only what comes next starts. */
  head(): Promise<number> {
    return this.deps.eventStore.head(this.deps.db.reader)
  }

  /** How far the log runs past `position`: in positions, and since the first event after it was written. */
  async behind(position: number): Promise<{ positions: number; since?: string }> {
    const { head, firstAfter } = await this.deps.eventStore.headAndFirstAfter(position, this.deps.db.reader)
    return { positions: Math.max(0, head - position), since: firstAfter }
  }
}

/** pg_current_snapshot() as text: `xmin:xmax:xip,...`. */
function parseSnapshot(text: string): Snapshot {
  const [xmin, , running] = text.split(':') as [string, string, string]
  return { xmin: BigInt(xmin), running: running ? running.split(',').map(BigInt) : [] }
}
