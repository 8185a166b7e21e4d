import { nextTurn, turnsEvery } from '../../../db/batches'
import type { Database, Transaction } from '../../../db/database'
import type { EventBus } from '../../events/bus'
import type { RoomStore } from '../../rooms/store'
import type { PresenceStore } from './store'

/** Stale users reaped in one batch. */
const REAP_BATCH = 200
/** Users' presence changes recorded between two turns of the event loop (each a small transaction, synchronous on SQLite). */
const YIELD_EVERY = 20
/** How long a user whose last socket here closed still counts as here: a reconnect within it writes nothing and tells nobody. */
const LEAVE_GRACE_MS = 1000

/**
 * Who is online: a user with a socket open on any instance. Each instance keeps a row per user it
 * holds sockets of and renews its rows three times per REALTIME_PRESENCE_TIMEOUT, by the store's
 * clock; a row not renewed within the timeout is reaped by whichever instance renews next, and its
 * user said offline unless another row of theirs lives. An instance that stalled past the timeout
 * finds its rows gone at its next renewal and writes them back (and says those users are online).
 *
 * Each change of one user's presence runs in a transaction holding that user's lock, so the check
 * of the other instances' rows and the write never interleave with another instance's; the signal
 * goes out with the commit. Comings and goings are signals to the user's open rooms, never stored.
 */
export class PresenceService {
  readonly instanceId = crypto.randomUUID()
  #timer?: Timer
  /** The store's clock minus ours, measured at each renewal. */
  #skew = 0
  /** The users with sockets here, as far as their arrivals and departures have been recorded. */
  readonly #here = new Set<string>()
  /** Each user's arrivals and departures here, one after another (a quick open and close must not end with a row left). */
  readonly #queues = new Map<string, Promise<void>>()
  /** Departures waiting out LEAVE_GRACE_MS. */
  readonly #leaving = new Map<string, Timer>()

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

  /** Reads the store's clock, then renews three times per timeout. */
  async start(): Promise<void> {
    this.#skew = (await this.deps.presenceStore.clock(this.deps.db)) - Date.now()
    this.#timer = setInterval(() => this.renew().catch(this.deps.onError), (this.deps.timeout * 1000) / 3)
    this.#timer.unref()
  }

  /** Stops renewing, once the arrivals and departures under way (and those waiting out their grace) are recorded. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    for (const [userId, timer] of this.#leaving) {
      clearTimeout(timer)
      this.#depart(userId)
    }
    await Promise.all(this.#queues.values())
  }

  /**
   * A socket of the user was authenticated here. The first writes their row (and tells their rooms
   * if that brings them online); the others, and one back within the grace, wait for that and write
   * nothing.
   */
  arrived(userId: string): Promise<void> {
    const leaving = this.#leaving.get(userId)
    clearTimeout(leaving)
    this.#leaving.delete(userId)
    if (this.#here.has(userId)) return this.#queues.get(userId) ?? Promise.resolve()
    this.#here.add(userId)
    return this.#inTurn(userId, () => this.#record(userId, true))
  }

  /**
   * The user's last socket on this instance closed: they leave once LEAVE_GRACE_MS has passed
   * without another, so that a client reconnecting in a loop writes nothing and tells nobody.
   */
  left(userId: string): void {
    if (this.#leaving.has(userId)) return
    const timer = setTimeout(() => this.#depart(userId), LEAVE_GRACE_MS)
    timer.unref()
    this.#leaving.set(userId, timer)
  }

  #depart(userId: string): void {
    this.#leaving.delete(userId)
    this.#here.delete(userId)
    void this.#inTurn(userId, () => this.#record(userId, false))
  }

  /**
   * Renews this instance's rows and makes them say who is here: a row another instance reaped while
   * this one stalled is written back, one whose departure failed to be recorded goes. Then reaps the
   * rows of instances that stopped renewing theirs.
   */
  async renew(): Promise<void> {
    const { presenceStore, db } = this.deps
    this.#skew = (await presenceStore.clock(db)) - Date.now()
    await presenceStore.renew(this.instanceId, this.#now(), db)
    const rows = new Set(await presenceStore.usersOf(this.instanceId, db))
    const wrong = [...[...this.#here].filter((userId) => !rows.has(userId)), ...[...rows].filter((userId) => !this.#here.has(userId))]
    const step = turnsEvery(YIELD_EVERY)
    for (const userId of wrong) {
      // Recorded in turn with the user's arrivals and departures here, as this instance now knows them.
      await this.#inTurn(userId, () => this.#record(userId, this.#here.has(userId)))
      await step()
    }
    await this.#reap()
  }

  online(userIds: string[]): Promise<string[]> {
    return this.deps.presenceStore.online(userIds, this.#liveSince(), this.deps.db)
  }

  /** Each stale user on their own: one that fails is logged and left for the next renewal, the others go on. */
  async #reap(): Promise<void> {
    const { presenceStore, db } = this.deps
    const failed = new Set<string>()
    for (;;) {
      const stale = (await presenceStore.staleUsers(this.#liveSince(), REAP_BATCH + failed.size, db)).filter((userId) => !failed.has(userId))
      const step = turnsEvery(YIELD_EVERY)
      for (const userId of stale) {
        await this.#changing(userId, async (tx) => {
          if ((await presenceStore.reap(userId, this.#liveSince(), tx)) > 0 && (await presenceStore.online([userId], this.#liveSince(), tx)).length === 0)
            await this.#tell(userId, false, tx)
        }).catch((error) => {
          failed.add(userId)
          this.deps.onError(error)
        })
        await step()
      }
      if (stale.length < REAP_BATCH) return
      await nextTurn()
    }
  }

  /** Writes (or deletes) this instance's row of the user, and tells their rooms when that makes them come online or go. */
  #record(userId: string, here: boolean): Promise<void> {
    const { presenceStore } = this.deps
    return this.#changing(userId, async (tx) => {
      const elsewhere = async () => (await presenceStore.online([userId], this.#liveSince(), tx)).length > 0
      if (here) {
        const before = await elsewhere()
        await presenceStore.join(userId, this.instanceId, this.#now(), tx)
        if (!before) await this.#tell(userId, true, tx)
      } else if ((await presenceStore.leave(userId, this.instanceId, tx)) && !(await elsewhere())) await this.#tell(userId, false, tx)
    })
  }

  /** A change of one user's presence, under their lock on every instance. */
  #changing(userId: string, work: (tx: Transaction) => Promise<void>): Promise<void> {
    return this.deps.db.transaction(async (tx) => {
      await tx.lock(`presence:${userId}`)
      await work(tx)
    })
  }

  #inTurn(userId: string, work: () => Promise<void>): Promise<void> {
    const done = (this.#queues.get(userId) ?? Promise.resolve()).then(work).catch(this.deps.onError)
    this.#queues.set(userId, done)
    return done.finally(() => {
      if (this.#queues.get(userId) === done) this.#queues.delete(userId)
    })
  }

  #now(): string {
    return new Date(Date.now() + this.#skew).toISOString()
  }

  #liveSince(): string {
    return new Date(Date.now() + this.#skew - this.deps.timeout * 1000).toISOString()
  }

  /** Tells the user's open rooms, once `tx` commits (a closed room's chat has nobody typing in it to tell). */
  async #tell(userId: string, online: boolean, tx: Transaction): Promise<void> {
    const room_ids = await this.deps.roomStore.openRoomIdsOf(userId, tx)
    if (room_ids.length > 0) await this.deps.bus.signal({ type: 'presence', user_id: userId, online, room_ids }, tx)
  }
}
