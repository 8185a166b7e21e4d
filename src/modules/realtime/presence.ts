import type { Database, Queryable } from '../../db/database'
import { isoAfter, nowIso } from '../../lib/clock'
import type { EventBus } from '../events/bus'
import type { RoomStore } from '../rooms/store'

/** Who has sockets open on which instance, renewed by each instance while it lives. */
export class PresenceStore {
  async join(userId: string, instanceId: string, now: string, q: Queryable): Promise<void> {
    await q.run(
      `INSERT INTO presence (user_id, instance_id, seen_at) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, instance_id) DO UPDATE SET seen_at = excluded.seen_at`,
      [userId, instanceId, now],
    )
  }

  async leave(userId: string, instanceId: string, q: Queryable): Promise<void> {
    await q.run('DELETE FROM presence WHERE user_id = $1 AND instance_id = $2', [userId, instanceId])
  }

  async renew(instanceId: string, now: string, q: Queryable): Promise<void> {
    await q.run('UPDATE presence SET seen_at = $2 WHERE instance_id = $1', [instanceId, now])
  }

  /** Deletes the rows nobody renewed since `before` (their instance died); answers whose they were. */
  async reap(before: string, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ user_id: string }>('DELETE FROM presence WHERE seen_at < $1 RETURNING user_id', [before])
    return [...new Set(rows.map((row) => row.user_id))]
  }

  /** Which of `userIds` have a row renewed since `since`. */
  async online(userIds: string[], since: string, q: Queryable): Promise<string[]> {
    if (userIds.length === 0) return []
    const marks = userIds.map((_, index) => `$${index + 2}`).join(', ')
    const rows = await q.all<{ user_id: string }>(`SELECT DISTINCT user_id FROM presence WHERE seen_at >= $1 AND user_id IN (${marks})`, [since, ...userIds])
    return rows.map((row) => row.user_id)
  }
}

/**
 * Who is online: a user with a socket open on any instance. Each instance keeps a row per user it
 * holds sockets of and renews its rows three times per REALTIME_PRESENCE_TIMEOUT; when an instance
 * dies, its rows go stale after that timeout, and within a third of it more another instance
 * deletes them and says those users went offline. Comings and goings are signals to the rooms the
 * user plays in, never stored as events.
 */
export class PresenceService {
  readonly instanceId = crypto.randomUUID()
  #timer?: Timer
  /** Each user's arrivals and departures here, one after another (a quick open and close must not end with a row left). */
  readonly #queues = new Map<string, Promise<void>>()

  constructor(
    private readonly deps: {
      db: Database
      presenceStore: PresenceStore
      roomStore: RoomStore
      bus: EventBus
      /** Seconds after which an instance's rows that were not renewed no longer count. */
      timeout: number
      onError: (error: unknown) => void
    },
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.renew().catch(this.deps.onError), (this.deps.timeout * 1000) / 3)
    this.#timer.unref()
  }

  /** Stops renewing, once the arrivals and departures under way are recorded. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await Promise.all(this.#queues.values())
  }

  /** The user's first socket on this instance was authenticated. */
  arrived(userId: string): Promise<void> {
    return this.#inTurn(userId, async () => {
      const { presenceStore, db } = this.deps
      const before = await presenceStore.online([userId], this.#liveSince(), db)
      await presenceStore.join(userId, this.instanceId, nowIso(), db)
      if (before.length === 0) await this.#tell(userId, true)
    })
  }

  /** The user's last socket on this instance closed. */
  left(userId: string): Promise<void> {
    return this.#inTurn(userId, async () => {
      const { presenceStore, db } = this.deps
      await presenceStore.leave(userId, this.instanceId, db)
      if ((await presenceStore.online([userId], this.#liveSince(), db)).length === 0) await this.#tell(userId, false)
    })
  }

  #inTurn(userId: string, work: () => Promise<void>): Promise<void> {
    const done = (this.#queues.get(userId) ?? Promise.resolve()).then(work).catch(this.deps.onError)
    this.#queues.set(userId, done)
    return done.finally(() => {
      if (this.#queues.get(userId) === done) this.#queues.delete(userId)
    })
  }

  /** Renews this instance's rows, and takes away those of instances that stopped renewing theirs. */
  async renew(): Promise<void> {
    const { presenceStore, db } = this.deps
    await presenceStore.renew(this.instanceId, nowIso(), db)
    for (const userId of await presenceStore.reap(this.#liveSince(), db))
      if ((await presenceStore.online([userId], this.#liveSince(), db)).length === 0) await this.#tell(userId, false)
  }

  online(userIds: string[]): Promise<string[]> {
    return this.deps.presenceStore.online(userIds, this.#liveSince(), this.deps.db)
  }

  #liveSince(): string {
    return isoAfter(-this.deps.timeout)
  }

  async #tell(userId: string, online: boolean): Promise<void> {
    const room_ids = await this.deps.roomStore.roomIdsOf(userId, this.deps.db)
    if (room_ids.length > 0) await this.deps.bus.signal({ type: 'presence', user_id: userId, online, room_ids })
  }
}
