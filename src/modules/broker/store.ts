import type { Queryable } from '../../db/database'
import { nowIso } from '../../lib/clock'

/** Where each relay of the log stands, and how far behind the log it is. */
export class RelayStore {
  /** The position `relay` has published up to; a relay that never ran starts at the log's beginning. */
  async position(relay: string, q: Queryable): Promise<number> {
    const row = await q.get<{ position: number }>('SELECT position FROM relay_positions WHERE relay = $1', [relay])
    return Number(row?.position ?? 0)
  }

  /** Moves `relay` on to `position`, never back: a relay that lost its lock without knowing yet may still write. */
  record(relay: string, position: number, q: Queryable): Promise<number> {
    return q.run(
      `INSERT INTO relay_positions (relay, position, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (relay) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at WHERE relay_positions.position < excluded.position`,
      [relay, position, nowIso()],
    )
  }

  /** How far the log runs past `position`: in positions, and since the first event after it was written. */
  async behind(position: number, q: Queryable): Promise<{ positions: number; since?: string }> {
    const head = await q.get<{ head: number | null }>('SELECT MAX(position) AS head FROM events')
    const first = await q.get<{ created_at: string }>('SELECT created_at FROM events WHERE position > $1 ORDER BY position LIMIT 1', [position])
    return { positions: Math.max(0, Number(head?.head ?? 0) - position), since: first?.created_at }
  }
}
