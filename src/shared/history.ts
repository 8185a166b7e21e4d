import { t } from 'elysia'

/**
 * A history read a page at a time by cursor, newest first (a room's chat, a conversation): what
 * its query takes and how a page answers. Cursors are opaque to clients: an item's number in its
 * history, in base 36.
 */

/** A page cursor: at most six base-36 digits. */
export const Cursor = t.String({ pattern: '^m[0-9a-z]{1,6}$', examples: ['m2s'], description: 'a cursor from an earlier page' })

/** The largest number a cursor stands for: the columns are 32-bit, and a bound past them keeps PostgreSQL off their index. */
const MAX_CURSOR_SEQ = 2 ** 31 - 1

export const toCursor = (seq: number) => `m${seq.toString(36)}`
/** A cursor's number, capped at 2^31 - 1: past it no message lies, so the page is the same. */
export const fromCursor = (cursor: string) => Math.min(Number.parseInt(cursor.slice(1), 36), MAX_CURSOR_SEQ)

/** A history query's cursors as numbers, for the store. */
export const seqRange = (query: HistoryRequest) => ({
  before: query.before === undefined ? undefined : fromCursor(query.before),
  after: query.after === undefined ? undefined : fromCursor(query.after),
  limit: query.limit ?? 50,
})

/** A page of a history (newest first) with the cursors to the pages around it. */
export function historyPage<Item extends { seq: number }>(items: Item[], more: boolean, query: { after?: string }) {
  const oldest = items.at(-1)
  const newest = items[0]
  return {
    messages: items,
    // Reading forward, what lies before the page is older; reading back, only `more` says so.
    older: oldest && (query.after !== undefined || more) ? toCursor(oldest.seq) : null,
    newer: newest ? toCursor(newest.seq) : (query.after ?? null),
  }
}

export const ClientId = t.String({
  pattern: '^[A-Za-z0-9_-]{1,64}$',
  examples: ['c-1732370000-7'],
  description: "the sender's own id for the message: sending it again answers the message already stored",
})

/** The query of a history: before or after a cursor, a page of `limit`. */
export const HistoryQuery = {
  before: t.Optional(Cursor),
  after: t.Optional(Cursor),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50, description: 'page size' })),
}

export type HistoryRequest = { before?: string; after?: string; limit?: number }
