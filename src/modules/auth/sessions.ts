import type { Transaction } from '../../db/database'
import { nowIso } from '../../lib/clock'
import { type LobbyEvent, userStream } from '../events/model'
import type { EventLog } from '../events/service'
import type { RevocationReason, SessionStore } from './store'

/**
 * Ending sessions, for the auth domain and for the others that ask (deactivation): each ended
 * session is refused on every instance from the next request on (the guard reads sessions on each),
 * and its user's stream is told, in the same transaction.
 */
export class SessionService {
  constructor(private readonly deps: { sessionStore: SessionStore; events: EventLog }) {}

  async end(sessionId: string, reason: RevocationReason, tx: Transaction): Promise<void> {
    const userId = await this.deps.sessionStore.revoke(sessionId, reason, nowIso(), tx)
    if (userId !== undefined) await this.#tell(userId, [sessionId], reason, tx)
  }

  /** Ends every live session of the user but `keep`. */
  async endAllOf(userId: string, reason: RevocationReason, tx: Transaction, keep: string | null = null): Promise<void> {
    await this.#tell(userId, await this.deps.sessionStore.revokeAllOfUser(userId, reason, nowIso(), keep, tx), reason, tx)
  }

  /** Ends the user's live sessions beyond the `keep` newest. */
  async endAllButNewest(userId: string, keep: number, tx: Transaction): Promise<void> {
    await this.#tell(userId, await this.deps.sessionStore.revokeAllButNewest(userId, keep, nowIso(), tx), 'too_many_sessions', tx)
  }

  async #tell(userId: string, sessionIds: string[], reason: RevocationReason, tx: Transaction): Promise<void> {
    const stream = userStream(userId)
    await this.deps.events.emit(tx, ...sessionIds.map((session_id): [string, LobbyEvent] => [stream, { type: 'session_revoked', session_id, reason }]))
  }
}
