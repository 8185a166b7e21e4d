import type { Database, Transaction } from '../../db/database'
import type { Committed, EventFeed } from './feed'
import type { StoredEvent } from './model'

/**
 * How committed events reach the feed of every instance. The bus only wakes the feeds; the event
 * log stays the data, so a notice lost on the way costs a read, never an event.
 */
export interface EventBus {
  /** Announces events written in `tx`, to go out once (and only if) it commits. */
  announce(tx: Transaction, events: StoredEvent[]): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
}

/** One instance on its own store (SQLite): committed events go straight to its feed. */
export class InProcessBus implements EventBus {
  constructor(private readonly feed: EventFeed) {}

  async announce(tx: Transaction, events: StoredEvent[]): Promise<void> {
    tx.afterCommit(() => events.forEach((event) => this.feed.committed(event)))
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

/** PostgreSQL's NOTIFY payloads must stay under 8,000 bytes. */
const MAX_PAYLOAD = 7900
export const EVENTS_CHANNEL = 'lobby_events'

/**
 * Every instance on one PostgreSQL: a transaction's events go out as one NOTIFY, which PostgreSQL
 * delivers at commit, in commit order, to every instance LISTENing. An event too big for a
 * payload goes as its place only, and the feed reads it from the log. When the listening
 * connection drops, Bun.SQL reconnects it, and the feed then reads whatever it missed.
 */
export class PostgresBus implements EventBus {
  #stop?: () => Promise<void>

  constructor(
    private readonly db: Database,
    private readonly feed: EventFeed,
  ) {}

  async announce(tx: Transaction, events: StoredEvent[]): Promise<void> {
    let payload = JSON.stringify(events)
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) payload = JSON.stringify(events.map(({ stream, seq }) => ({ stream, seq })))
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) {
      // So many events at once that even their places do not fit: name the last of each stream.
      const last = new Map(events.map(({ stream, seq }) => [stream, seq]))
      payload = JSON.stringify([...last].map(([stream, seq]) => ({ stream, seq })))
    }
    await tx.get('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload])
  }

  async start(): Promise<void> {
    if (!this.db.listen) throw new Error('this store cannot LISTEN')
    let reconnect = false
    this.#stop = await this.db.listen(
      EVENTS_CHANNEL,
      (payload) => {
        for (const notice of JSON.parse(payload) as Committed[]) this.feed.committed(notice)
      },
      () => {
        if (reconnect) this.feed.catchUp()
        reconnect = true
      },
    )
  }

  async stop(): Promise<void> {
    await this.#stop?.()
  }
}
