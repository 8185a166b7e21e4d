import { inList } from '../../../db/in-list'
import type { Dialect, Queryable } from '../../../db/database'

/**
 * Who has sockets open on which instance: a row per user and instance, and a row per instance that
 * it renews while it lives, with times by the store's clock; a user's row counts while its
 * instance's does. The presence service needs only this, so another engine is one more
 * implementation; each call runs in `q`, the transaction that holds the user's lock when the call
 * changes a user's presence.
 */
export interface PresenceStore {
  /** The store's clock (ms since the epoch): instances judge each other's rows by it, whatever their own clocks say. */
  clock(q: Queryable): Promise<number>
  /** Writes the instance's rows of the users (and renews the instance: it lives). */
  join(userIds: string[], instanceId: string, now: string, q: Queryable): Promise<void>
  /** Deletes the instance's rows of the users; answers those it had. */
  leave(userIds: string[], instanceId: string, q: Queryable): Promise<string[]>
  /** Renews the instance: one row, however many users it holds. */
  renew(instanceId: string, now: string, q: Queryable): Promise<void>
  usersOf(instanceId: string, q: Queryable): Promise<string[]>
  /** Up to `limit` users with a row on an instance nobody renewed since `before` (it died, or stalled). */
  staleUsers(before: string, limit: number, q: Queryable): Promise<string[]>
  /** Deletes the user's rows on instances not renewed since `before`; answers how many. */
  reap(userId: string, before: string, q: Queryable): Promise<number>
  /** Forgets the instances not renewed since `before` that hold no row any more. */
  forgetInstances(before: string, q: Queryable): Promise<void>
  /** Which of `userIds` have a row on an instance renewed since `since`. */
  online(userIds: string[], since: string, q: Queryable): Promise<string[]>
}

/** The presence rows in the service's own database. */
export class SqlPresenceStore implements PresenceStore {
  constructor(private readonly dialect: Dialect) {}

  async clock(q: Queryable): Promise<number> {
    const row = await q.get<{ now: string }>(
      this.dialect === 'postgres'
        ? `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS now`
        : "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS now",
    )
    return Date.parse(row!.now)
  }

  async join(userIds: string[], instanceId: string, now: string, q: Queryable): Promise<void> {
    if (userIds.length === 0) return
    await this.renew(instanceId, now, q)
    const rows = userIds.map((_, index) => `($${index + 3}, $1, $2)`).join(', ')
    await q.run(`INSERT INTO presence (user_id, instance_id, seen_at) VALUES ${rows} ON CONFLICT (user_id, instance_id) DO NOTHING`, [instanceId, now, ...userIds])
  }

  async leave(userIds: string[], instanceId: string, q: Queryable): Promise<string[]> {
    if (userIds.length === 0) return []
    const { marks, params } = inList(userIds, 2)
    const rows = await q.all<{ user_id: string }>(`DELETE FROM presence WHERE instance_id = $1 AND user_id IN (${marks}) RETURNING user_id`, [instanceId, ...params])
    return rows.map((row) => row.user_id)
  }

  async renew(instanceId: string, now: string, q: Queryable): Promise<void> {
    await q.run(
      'INSERT INTO presence_instances (instance_id, seen_at) VALUES ($1, $2) ON CONFLICT (instance_id) DO UPDATE SET seen_at = excluded.seen_at',
      [instanceId, now],
    )
  }

  async usersOf(instanceId: string, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ user_id: string }>('SELECT user_id FROM presence WHERE instance_id = $1', [instanceId])
    return rows.map((row) => row.user_id)
  }

  async staleUsers(before: string, limit: number, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ user_id: string }>(
      'SELECT DISTINCT user_id FROM presence WHERE instance_id IN (SELECT instance_id FROM presence_instances WHERE seen_at < $1) LIMIT $2',
      [before, limit],
    )
    return rows.map((row) => row.user_id)
  }

  reap(userId: string, before: string, q: Queryable): Promise<number> {
    return q.run('DELETE FROM presence WHERE user_id = $1 AND instance_id IN (SELECT instance_id FROM presence_instances WHERE seen_at < $2)', [userId, before])
  }

  async forgetInstances(before: string, q: Queryable): Promise<void> {
    await q.run(
      'DELETE FROM presence_instances WHERE seen_at < $1 AND NOT EXISTS (SELECT 1 FROM presence WHERE presence.instance_id = presence_instances.instance_id)',
      [before],
    )
  }

  async online(userIds: string[], since: string, q: Queryable): Promise<string[]> {
    if (userIds.length === 0) return []
    const { marks, params } = inList(userIds, 2)
    const rows = await q.all<{ user_id: string }>(
      `SELECT DISTINCT user_id FROM presence WHERE user_id IN (${marks}) AND instance_id IN (SELECT instance_id FROM presence_instances WHERE seen_at >= $1)`,
      [since, ...params],
    )
    return rows.map((row) => row.user_id)
  }
}
