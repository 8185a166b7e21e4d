import type { Queryable } from '../../db/database'
import { nowIso } from '../../lib/clock'

/** Where each relay of the log stands: the position up to which it has published. */
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
}
