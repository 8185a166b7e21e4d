import type { Committed, EventBus } from '../events/bus'
import type { EventLog } from '../events/service'
import type { User } from '../users/model'

/** A bus that has said nothing for this many heartbeats may have lost notices: the cache is not trusted until it hears again. */
const HEARTBEATS_MISSED = 3

/**
 * Live sessions and their accounts, held in memory so that a known session costs no store read.
 * Each entry goes as soon as this instance learns of a committed change that concerns it: at once
 * for a change this instance made (EventLog.onCommitted, before its answer leaves), and when the
 * bus's notice arrives for a change made elsewhere. An end of a session (`session_revoked`) drops
 * that session; any change to an account drops all of its sessions.
 *
 * A notice lost on the way would leave an entry stale, so the cache is trusted only while the bus
 * proves it hears everything: on PostgreSQL its listening connection hears a heartbeat every
 * second; after three seconds of silence every request reads the store, and the cache empties
 * when the bus reconnects or is heard again. A read that raced with a change is never kept:
 * whatever was forgotten while it ran makes it stale. PostgreSQL only: instances sharing a
 * SQLite file have no bus between them (config.ts refuses it there).
 */
export class PrincipalCache {
  readonly #users = new Map<string, User>()
  readonly #sessionsOf = new Map<string, Set<string>>()
  /** Counts what was forgotten: a read started before a change was forgotten is not kept. */
  #forgotten = 0
  /** performance.now() of the last heartbeat: a clock that never steps back. */
  #heardAt = Number.NEGATIVE_INFINITY

  constructor(
    private readonly deps: {
      bus: EventBus
      events: EventLog
      /** Sessions held at most; the oldest entry goes first. */
      maxEntries: number
    },
  ) {
    // Every change that concerns a session or an account is on its user's stream.
    void deps.bus.read({ committed: (notice) => this.#noticed(notice), lost: () => this.#forgetAll(), heard: () => this.#heard() }).add('user:*')
    deps.events.onCommitted((stored) => this.#noticed(stored))
  }

  /** Sessions held now. */
  get size(): number {
    return this.#users.size
  }

  /** The account of a live session: from memory when it is trusted and holds it, else from `read` (kept when nothing changed meanwhile). */
  async through(sessionId: string, read: () => Promise<User | undefined>): Promise<User | undefined> {
    if (this.#trusted()) {
      const known = this.#users.get(sessionId)
      if (known) return known
    }
    const forgotten = this.#forgotten
    const user = await read()
    if (user && forgotten === this.#forgotten && this.#trusted()) this.#remember(sessionId, user)
    return user
  }

  #trusted(): boolean {
    const heartbeat = this.deps.bus.heartbeatMs
    return heartbeat === undefined || performance.now() - this.#heardAt <= heartbeat * HEARTBEATS_MISSED
  }

  #heard(): void {
    // Heard again after a silence: what was said meanwhile may be lost.
    if (!this.#trusted()) this.#forgetAll()
    this.#heardAt = performance.now()
  }

  #noticed(notice: Committed): void {
    const { event, stream } = notice
    // Too big for the bus to carry: whatever it says about its user, forget them.
    if (event === undefined) {
      if (stream.startsWith('user:')) this.#forgetUser(stream.slice('user:'.length))
      return
    }
    switch (event.type) {
      case 'session_revoked':
        return this.#forgetSession(event.session_id)
      case 'account_changed':
      case 'account_deleted':
      case 'account_restored':
      case 'account_erased':
        return this.#forgetUser(event.user_id)
    }
  }

  #remember(sessionId: string, user: User): void {
    if (!this.#users.has(sessionId) && this.#users.size >= this.deps.maxEntries) {
      const oldest = this.#users.keys().next().value
      if (oldest !== undefined) this.#drop(oldest)
    }
    // Shared by every request of the session: nobody may change it in place.
    this.#users.set(sessionId, Object.freeze(user))
    let sessions = this.#sessionsOf.get(user.user_id)
    if (!sessions) this.#sessionsOf.set(user.user_id, (sessions = new Set()))
    sessions.add(sessionId)
  }

  #forgetSession(sessionId: string): void {
    this.#forgotten++
    this.#drop(sessionId)
  }

  /** Lets an entry go (pushed out, or forgotten). */
  #drop(sessionId: string): void {
    const user = this.#users.get(sessionId)
    if (!user) return
    this.#users.delete(sessionId)
    const sessions = this.#sessionsOf.get(user.user_id)
    sessions?.delete(sessionId)
    if (sessions?.size === 0) this.#sessionsOf.delete(user.user_id)
  }

  #forgetUser(userId: string): void {
    this.#forgotten++
    for (const sessionId of this.#sessionsOf.get(userId) ?? []) this.#users.delete(sessionId)
    this.#sessionsOf.delete(userId)
  }

  #forgetAll(): void {
    this.#forgotten++
    this.#users.clear()
    this.#sessionsOf.clear()
  }
}
