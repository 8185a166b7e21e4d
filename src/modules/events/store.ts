import { inList, valuesList } from '../../db/in-list'
import type { Dialect, Queryable, SqlValue, Transaction } from '../../db/database'
import type { LobbyEvent, StoredEvent } from './model'

/** Events written or blanked in one statement: well under PostgreSQL's 65,535 parameters. */
const SLICE = 500

type EventRow = { stream: string; seq: number; position: number | null; payload: string; created_at: string }
const COLUMNS = 'stream, seq, position, payload, created_at'
const toStored = (row: EventRow): StoredEvent => ({
  stream: row.stream,
  seq: Number(row.seq),
  position: row.position === null ? undefined : Number(row.position),
  event: JSON.parse(row.payload) as LobbyEvent,
  created_at: row.created_at,
})

/** A read of one stream's events after `afterSeq` (and up to `upTo`), at most `limit`. */
export interface LogRead {
  stream: string
  afterSeq: number
  limit: number
  upTo?: number
}

/**
 * The event log. A stream's next number comes from its row in event_streams, taken by an upsert
 * that holds the row until commit: two transactions appending to one stream commit in the order
 * of their numbers (on PostgreSQL the second waits for the first; SQLite runs one at a time). The
 * log's position, across every stream, is allocated as a transaction ends (allocate()).
 */
export class EventStore {
  constructor(private readonly dialect: Dialect) {}

  /** The first of the stream's next `count` numbers (the others follow it), holding its row until `tx` ends. */
  async nextSeqs(stream: string, count: number, tx: Transaction): Promise<number> {
    const head = await tx.get<{ last_seq: number }>(
      `INSERT INTO event_streams (stream, last_seq) VALUES ($1, $2)
       ON CONFLICT (stream) DO UPDATE SET last_seq = event_streams.last_seq + excluded.last_seq
       RETURNING last_seq`,
      [stream, count],
    )
    return Number(head?.last_seq) - count + 1
  }

  /**
   * `count` positions of the log, in increasing order. PostgreSQL takes them from a sequence, which
   * never waits for another transaction (a counter row would make every commit wait for the one
   * before: 3,146 transactions a second fell to 553 here); SQLite writes one transaction at a time.
   */
  async allocate(count: number, tx: Transaction): Promise<number[]> {
    if (this.dialect === 'postgres') {
      const rows = await tx.all<{ position: number }>("SELECT nextval('events_position_seq') AS position FROM generate_series(1, $1)", [count])
      return rows.map((row) => Number(row.position)).sort((a, b) => a - b)
    }
    const head = await tx.get<{ position: number }>('UPDATE event_log_head SET position = position + $1 WHERE id = 1 RETURNING position', [count])
    const last = Number(head?.position)
    return Array.from({ length: count }, (_, index) => last - count + 1 + index)
  }

  /** Writes events numbered and positioned already, a statement per 500. */
  async insert(events: StoredEvent[], tx: Transaction): Promise<void> {
    for (let start = 0; start < events.length; start += SLICE) {
      const { marks, params } = valuesList(
        events
          .slice(start, start + SLICE)
          .map((stored) => [stored.stream, stored.seq, stored.position ?? null, stored.event.type, JSON.stringify(stored.event), stored.created_at]),
      )
      await tx.run(`INSERT INTO events (stream, seq, position, type, payload, created_at) VALUES ${marks}`, params)
    }
  }

  /** The events after `position` in the whole log, in position order, at most `limit`. */
  async afterPosition(position: number, limit: number, q: Queryable): Promise<StoredEvent[]> {
    const rows = await q.all<EventRow>(`SELECT ${COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2`, [position, limit])
    return rows.map(toStored)
  }

  /**
   * PostgreSQL: the events after `position` (at most `limit`) and, in the same statement, the
   * snapshot they were read in (`pg_current_snapshot()`, as text), so that what the snapshot says
   * has ended is exactly what the rows can show.
   */
  async afterPositionInSnapshot(position: number, limit: number, q: Queryable): Promise<{ events: StoredEvent[]; snapshot: string }> {
    const rows = await q.all<{ snapshot: string } & (EventRow | { [key in keyof EventRow]: null })>(
      `SELECT taken.snapshot, after.stream, after.seq, after.position, after.payload, after.created_at
         FROM (SELECT pg_current_snapshot()::text AS snapshot) AS taken
         LEFT JOIN LATERAL (SELECT ${COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2) AS after ON true`,
      [position, limit],
    )
    return { events: rows.flatMap((row) => (row.stream === null ? [] : [toStored(row as EventRow)])), snapshot: rows[0]!.snapshot }
  }

  /** The last position written (0 for an empty log). */
  async head(q: Queryable): Promise<number> {
    const head = await q.get<{ head: number | null }>('SELECT MAX(position) AS head FROM events')
    return Number(head?.head ?? 0)
  }

  /** The last position written (0 for an empty log), and when the first event after `position` was written. */
  async headAndFirstAfter(position: number, q: Queryable): Promise<{ head: number; firstAfter?: string }> {
    const head = await this.head(q)
    const first = await q.get<{ created_at: string }>('SELECT created_at FROM events WHERE position > $1 ORDER BY position LIMIT 1', [position])
    return { head, firstAfter: first?.created_at }
  }

  /** The events of `stream` after `afterSeq` (and up to `upTo`), in order, at most `limit`. */
  async after(stream: string, afterSeq: number, limit: number, q: Queryable, upTo?: number): Promise<StoredEvent[]> {
    // No bound past 2^31 for PostgreSQL to compare an INTEGER column with: that would keep it off the index.
    const rows = await q.all<EventRow>(
      upTo === undefined
        ? `SELECT ${COLUMNS} FROM events WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3`
        : `SELECT ${COLUMNS} FROM events WHERE stream = $1 AND seq > $2 AND seq <= $4 ORDER BY seq LIMIT $3`,
      upTo === undefined ? [stream, afterSeq, limit] : [stream, afterSeq, limit, upTo],
    )
    return rows.map(toStored)
  }

  /** Several reads as after() does them, in one statement: answers each one's events, in the order of `reads`. */
  async afterEach(reads: LogRead[], q: Queryable): Promise<StoredEvent[][]> {
    const params: SqlValue[] = []
    const selects = reads.map(({ stream, afterSeq, limit, upTo }, index) => {
      const first = params.push(stream, afterSeq, limit) - 2
      const bound = upTo === undefined ? '' : ` AND seq <= $${params.push(upTo)}`
      return `SELECT * FROM (SELECT ${index} AS read_index, ${COLUMNS} FROM events WHERE stream = $${first} AND seq > $${first + 1}${bound} ORDER BY seq LIMIT $${first + 2}) AS read_${index}`
    })
    const rows = await q.all<EventRow & { read_index: number }>(selects.join(' UNION ALL '), params)
    const answers = reads.map((): StoredEvent[] => [])
    for (const row of rows) answers[Number(row.read_index)]!.push(toStored(row))
    for (const events of answers) events.sort((a, b) => a.seq - b.seq)
    return answers
  }

  /**
   * Blanks the `body` of the events `seqs` of `stream` still in the log: a deleted message's posting
   * and its edits (at most 50 now; a message edited before that cap may have many, read in slices).
   */
  async blankBodies(stream: string, seqs: number[], q: Queryable): Promise<void> {
    for (let start = 0; start < seqs.length; start += SLICE) {
      const slice = seqs.slice(start, start + SLICE)
      const marks = slice.map((_, index) => `$${index + 2}`).join(', ')
      const rows = await q.all<{ seq: number; payload: string }>(`SELECT seq, payload FROM events WHERE stream = $1 AND seq IN (${marks})`, [stream, ...slice])
      for (const row of rows)
        await q.run('UPDATE events SET payload = $3 WHERE stream = $1 AND seq = $2', [stream, row.seq, JSON.stringify({ ...JSON.parse(row.payload), body: '' })])
    }
  }

  /** The number of the last event written to each of `streams` (streams never written to are left out). */
  async lastSeqs(streams: string[], q: Queryable): Promise<Map<string, number>> {
    const { marks, params } = inList(streams)
    const rows = await q.all<{ stream: string; last_seq: number }>(`SELECT stream, last_seq FROM event_streams WHERE stream IN (${marks})`, params)
    return new Map(rows.map((row) => [row.stream, Number(row.last_seq)]))
  }

  /** Deletes up to `limit` events written before `before`, and at or before `upTo` if given (the streams' numbers go on). */
  deleteOlderThan(before: string, limit: number, q: Queryable, upTo?: number): Promise<number> {
    return upTo === undefined
      ? q.run('DELETE FROM events WHERE (stream, seq) IN (SELECT stream, seq FROM events WHERE created_at < $1 LIMIT $2)', [before, limit])
      : q.run('DELETE FROM events WHERE (stream, seq) IN (SELECT stream, seq FROM events WHERE created_at < $1 AND position <= $3 LIMIT $2)', [before, limit, upTo])
  }
}
