import type { Queryable, Transaction } from '../../db/database'
import type { LobbyEvent, StoredEvent } from './model'

/**
 * The event log. A stream's next number comes from its row in event_streams, taken by an upsert
 * that holds the row until commit: two transactions appending to one stream commit in the order
 * of their numbers (on PostgreSQL the second waits for the first; SQLite runs one at a time).
 */
/** Events read at a time when blanking: well under PostgreSQL's 65,535 parameters. */
const BLANK_SLICE = 500

export class EventStore {
  async append(stream: string, event: LobbyEvent, now: string, tx: Transaction): Promise<number> {
    const head = await tx.get<{ last_seq: number }>(
      `INSERT INTO event_streams (stream, last_seq) VALUES ($1, 1)
       ON CONFLICT (stream) DO UPDATE SET last_seq = event_streams.last_seq + 1
       RETURNING last_seq`,
      [stream],
    )
    const seq = Number(head?.last_seq)
    await tx.run('INSERT INTO events (stream, seq, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)', [
      stream,
      seq,
      event.type,
      JSON.stringify(event),
      now,
    ])
    return seq
  }

  /** The events of `stream` after `afterSeq` (and up to `upTo`), in order, at most `limit`. */
  async after(stream: string, afterSeq: number, limit: number, q: Queryable, upTo?: number): Promise<StoredEvent[]> {
    // No bound past 2^31 for PostgreSQL to compare an INTEGER column with: that would keep it off the index.
    const rows = await q.all<{ stream: string; seq: number; payload: string; created_at: string }>(
      upTo === undefined
        ? 'SELECT stream, seq, payload, created_at FROM events WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3'
        : 'SELECT stream, seq, payload, created_at FROM events WHERE stream = $1 AND seq > $2 AND seq <= $4 ORDER BY seq LIMIT $3',
      upTo === undefined ? [stream, afterSeq, limit] : [stream, afterSeq, limit, upTo],
    )
    return rows.map((row) => ({ stream: row.stream, seq: Number(row.seq), event: JSON.parse(row.payload) as LobbyEvent, created_at: row.created_at }))
  }

  /**
   * Blanks the `body` of the events `seqs` of `stream` still in the log: a deleted message's posting
   * and its edits (at most 50 now; a message edited before that cap may have many, read in slices).
   */
  async blankBodies(stream: string, seqs: number[], q: Queryable): Promise<void> {
    for (let start = 0; start < seqs.length; start += BLANK_SLICE) {
      const slice = seqs.slice(start, start + BLANK_SLICE)
      const marks = slice.map((_, index) => `$${index + 2}`).join(', ')
      const rows = await q.all<{ seq: number; payload: string }>(`SELECT seq, payload FROM events WHERE stream = $1 AND seq IN (${marks})`, [stream, ...slice])
      for (const row of rows)
        await q.run('UPDATE events SET payload = $3 WHERE stream = $1 AND seq = $2', [stream, row.seq, JSON.stringify({ ...JSON.parse(row.payload), body: '' })])
    }
  }

  /** The number of the last event written to `stream` (0 for none). */
  async lastSeq(stream: string, q: Queryable): Promise<number> {
    const row = await q.get<{ last_seq: number }>('SELECT last_seq FROM event_streams WHERE stream = $1', [stream])
    return Number(row?.last_seq ?? 0)
  }

  /** Deletes up to `limit` events written before `before` (the streams' numbers go on). */
  deleteOlderThan(before: string, limit: number, q: Queryable): Promise<number> {
    return q.run('DELETE FROM events WHERE (stream, seq) IN (SELECT stream, seq FROM events WHERE created_at < $1 LIMIT $2)', [before, limit])
  }
}
