import type { Transaction } from '../../db/database'
import { nowIso } from '../../lib/clock'
import type { RevocationReason, SessionStore } from './store'

/** What other domains may ask of sessions: ending a user's, at once on every instance (the guard reads them on each request). */
export class SessionService {
  constructor(private readonly store: SessionStore) {}

  endAllOf(userId: string, reason: RevocationReason, tx: Transaction): Promise<number> {
    return this.store.revokeAllOfUser(userId, reason, nowIso(), null, tx)
  }
}
