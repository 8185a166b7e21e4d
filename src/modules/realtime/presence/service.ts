import { nextTurn, turnsEvery } from '../../../db/batches'
import type { Database, Transaction } from '../../../db/database'
import type { EventBus } from '../../events/bus'
import type { RoomStore } from '../../rooms/store'
import type { PresenceStore } from './store'

/** Stale users reaped in one batch. */
const REAP_BATCH = 200
/** Stale users reaped between two turns of the event loop (each a small transaction, synchronous on SQLite). */
const YIELD_EVERY = 20
/** Users whose arrivals and departures here one transaction records; more wait for the next turn of the event loop. */
const RECORD_BATCH = 500
/** How long a user whose last socket here closed still counts as here: a reconnect within it writes nothing and tells nobody. */
const LEAVE_GRACE_MS = 1000
/** How long the users of a batch that could not be recorded wait before they are recorded again. */
const RETRY_MS = 1000
/**
 * Users' presence locks, shared: a batch takes the locks of its users' stripes, at most this many,
 * not one per user (on PostgreSQL, advisory locks fill a table shared by every connection,
 * max_locks_per_transaction times max_connections: 500 per batch on a dozen instances would fill it).
 */
const PRESENCE_LOCKS = 32

/**
 * Who is online: a user with a socket open on any instance. Each instance keeps a row per user it
 * holds sockets of, and renews itself (one row, however many users) three times per
 * REALTIME_PRESENCE_TIMEOUT, by the store's clock; the rows of an instance not renewed within the
 * timeout are reaped by whichever instance renews next, and their users said offline unless another
 * row of theirs lives. An instance that stalled past the timeout finds its rows gone at its next
 * renewal and writes them back (and says those users are online).
 *
 * The arrivals and departures of one turn of the event loop are recorded together, in one
 * transaction holding their users' locks (a lock per stripe of users), so the check of the other instances' rows and
 * the write never interleave with another instance's; the signals go out with the commit. A resume
 * storm of thousands of players is then a few transactions, not one each. Comings and goings are
 * signals to the user's open rooms, never stored.
 */
export class PresenceService {
  readonly instanceId = crypto.randomUUID()
  #timer?: Timer
  /** The store's clock minus ours, measured at each renewal. */
  #skew = 0
  /** The users with sockets here, as the hub said. */
  readonly #here = new Set<string>()
  /** Users whose row here may not say what `#here` does, with what waits for it to: the next batch records them. */
  readonly #unrecorded = new Map<string, Array<() => void>>()
  /** The same for the batch being recorded. */
  readonly #recording = new Map<string, Array<() => void>>()
  /** The batches under way, one after another, until none is left. */
  #draining?: Promise<void>
  /** Departures waiting out LEAVE_GRACE_MS. */
  readonly #leaving = new Map<string, Timer>()
  /**
   * This instance's writes, one after another: a renewal and a batch both write the instance's
   * row, and a batch its users' rows in its own order.
   */
  #writes: Promise<unknown> = Promise.resolve()
  #stopped = false

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

  /** Reads the store's clock and says this instance lives, then renews three times per timeout. */
  async start(): Promise<void> {
    this.#skew = (await this.deps.presenceStore.clock(this.deps.db)) - Date.now()
    await this.deps.presenceStore.renew(this.instanceId, this.#now(), this.deps.db)
    this.#timer = setInterval(() => this.renew().catch(this.deps.onError), (this.deps.timeout * 1000) / 3)
    this.#timer.unref()
  }

  /** Stops renewing, once the arrivals and departures under way (and those waiting out their grace) are recorded. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    for (const [userId, timer] of this.#leaving) {
      clearTimeout(timer)
      this.#depart(userId)
    }
    await this.#draining
  }

  /**
   * A socket of the user was authenticated here: resolves once their row is written (and their
   * rooms told, if that brings them online). Their other sockets, and one back within the grace,
   * wait for the same write, or for nothing when it is done.
   */
  arrived(userId: string): Promise<void> {
    clearTimeout(this.#leaving.get(userId))
    this.#leaving.delete(userId)
    const arriving = !this.#here.has(userId)
    if (arriving) this.#here.add(userId)
    const waiting = arriving ? this.#mark(userId) : (this.#unrecorded.get(userId) ?? this.#recording.get(userId))
    return waiting ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve()
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
    this.#mark(userId)
  }

  /**
   * Renews this instance's rows and makes them say who is here: a row another instance reaped while
   * this one stalled is written back, one whose departure failed to be recorded goes. Then reaps the
   * rows of instances that stopped renewing theirs.
   */
  async renew(): Promise<void> {
    const { presenceStore, db } = this.deps
    this.#skew = (await presenceStore.clock(db)) - Date.now()
    await this.#oneAtATime(() => presenceStore.renew(this.instanceId, this.#now(), db))
    const rows = new Set(await presenceStore.usersOf(this.instanceId, db))
    for (const userId of this.#here) if (!rows.has(userId)) this.#mark(userId)
    for (const userId of rows) if (!this.#here.has(userId)) this.#mark(userId)
    await this.#draining
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
            await this.#tell(tx, [{ userId, online: false }])
        }).catch((error) => {
          failed.add(userId)
          this.deps.onError(error)
        })
        await step()
      }
      if (stale.length < REAP_BATCH) break
      await nextTurn()
    }
    if (failed.size === 0) await presenceStore.forgetInstances(this.#liveSince(), db)
  }

  /** Has the next batch record the user as `#here` then says; answers what waits for that. */
  #mark(userId: string): Array<() => void> {
    let waiting = this.#unrecorded.get(userId)
    if (!waiting) this.#unrecorded.set(userId, (waiting = []))
    this.#draining ??= this.#drain()
    return waiting
  }

  /** Records the marked users, a batch at a time, from the next turn of the event loop on (so that a turn's arrivals go together). */
  async #drain(): Promise<void> {
    while (this.#unrecorded.size > 0) {
      await nextTurn()
      for (const [userId, waiting] of this.#unrecorded) {
        if (this.#recording.size === RECORD_BATCH) break
        this.#recording.set(userId, waiting)
        this.#unrecorded.delete(userId)
      }
      const users = [...this.#recording.keys()]
      const recorded = await this.#oneAtATime(() => this.#record(users)).then(
        () => true,
        (error) => {
          this.deps.onError(error)
          return false
        },
      )
      // Whoever waits goes on either way (their socket works without the row); the row is written later.
      for (const waiting of this.#recording.values()) for (const resolve of waiting) resolve()
      this.#recording.clear()
      if (!recorded) setTimeout(() => this.#stopped || users.forEach((userId) => this.#mark(userId)), RETRY_MS).unref()
    }
    this.#draining = undefined
  }

  #oneAtATime<Result>(write: () => Promise<Result>): Promise<Result> {
    const done = this.#writes.then(write)
    this.#writes = done.catch(() => {})
    return done
  }

  /**
   * Writes this instance's rows of the users here and deletes those of the others, and tells the
   * rooms of each that this brings online or takes offline.
   */
  #record(userIds: string[]): Promise<void> {
    const { presenceStore } = this.deps
    return this.deps.db.transaction(async (tx) => {
      await tx.lock(...new Set(userIds.map(presenceKey)))
      const arriving = userIds.filter((userId) => this.#here.has(userId))
      const onlineBefore = new Set(await presenceStore.online(arriving, this.#liveSince(), tx))
      await presenceStore.join(arriving, this.instanceId, this.#now(), tx)
      const gone = await presenceStore.leave(
        userIds.filter((userId) => !this.#here.has(userId)),
        this.instanceId,
        tx,
      )
      const stillOnline = new Set(await presenceStore.online(gone, this.#liveSince(), tx))
      await this.#tell(tx, [
        ...arriving.filter((userId) => !onlineBefore.has(userId)).map((userId) => ({ userId, online: true })),
        ...gone.filter((userId) => !stillOnline.has(userId)).map((userId) => ({ userId, online: false })),
      ])
    })
  }

  /** A change of one user's presence, under their lock on every instance. */
  #changing(userId: string, work: (tx: Transaction) => Promise<void>): Promise<void> {
    return this.deps.db.transaction(async (tx) => {
      await tx.lock(presenceKey(userId))
      await work(tx)
    })
  }

  #now(): string {
    return new Date(Date.now() + this.#skew).toISOString()
  }

  #liveSince(): string {
    return new Date(Date.now() + this.#skew - this.deps.timeout * 1000).toISOString()
  }

  /** Tells the users' open rooms that they came online or went, once `tx` commits (a closed room's chat has nobody typing in it to tell). */
  async #tell(tx: Transaction, changes: Array<{ userId: string; online: boolean }>): Promise<void> {
    const roomsOf = await this.deps.roomStore.openRoomIdsOfEach(
      changes.map((change) => change.userId),
      tx,
    )
    for (const { userId, online } of changes) {
      const room_ids = roomsOf.get(userId)
      if (room_ids) await this.deps.bus.signal({ type: 'presence', user_id: userId, online, room_ids }, tx)
    }
  }
}

/** The lock a user's presence changes take, on every instance: their stripe's. */
const presenceKey = (userId: string) => `presence:${Bun.hash.crc32(userId) % PRESENCE_LOCKS}`
