import { batchRows, inBatches, inPages } from '../../db/batches'
import { type Database, type Transaction, UniqueViolation } from '../../db/database'
import { GroupedWrites } from '../../db/grouped-writes'
import type { UserRateLimiter } from '../../db/rate-limits'
import { isoAfter, nowIso } from '../../lib/clock'
import { ApiError, conflict, forbidden, notFound, unavailable } from '../../shared/errors'
import { plainText } from '../../shared/text'
import { chatStream, type LobbyEvent } from '../events/model'
import type { EventLog } from '../events/service'
import type { MembershipService } from '../rooms/membership'
import type { Standing } from '../rooms/store'
import type { User } from '../users/model'
import { historyPage, type HistoryRequest, seqRange } from '../../shared/history'
import type { Message } from './model'
import type { MessageStore } from './store'

/**
 * Room chat. A message is an event of the room's chat stream, written in the same transaction as
 * its row, so it reaches sockets and resumes exactly as lobby events do; its number in the stream
 * orders the history. The room's players write; they and admins read, a closed room's included.
 */
export class ChatService {
  /** A room's messages pass its lock one transaction at a time: those that arrive meanwhile are written together, in the next. */
  readonly #sends = new GroupedWrites<string, Send, Message>((roomId, sends) => this.#write(roomId, sends), {
    maxItems: MAX_MESSAGES_PER_WRITE,
    maxWaiting: MAX_MESSAGES_WAITING,
    full: () => unavailable('The room has too many messages waiting to be written; send again shortly', 1),
  })

  constructor(
    private readonly deps: {
      db: Database
      messageStore: MessageStore
      membership: MembershipService
      events: EventLog
      /** MESSAGE_RATE_LIMIT per MESSAGE_RATE_WINDOW, per user. */
      sent: UserRateLimiter
      policy: { maxLength: number; retention: number }
    },
  ) {}

  /**
   * Posts a message as `user`. With a `clientId` the user already used in this room, answers that
   * message instead (`created: false`), while they still play in it: a client that did not see its
   * acknowledgement resends safely.
   */
  async post(user: User, roomId: string, text: string, clientId?: string, messageId = Bun.randomUUIDv7()): Promise<{ message: Message; created: boolean }> {
    const body = this.#checked(text)
    const earlier = clientId && (await this.#sent(user, roomId, clientId))
    if (earlier) return earlier
    await this.deps.sent.consume(user.user_id)
    try {
      return { message: await this.#sends.write(roomId, { user, body, client_id: clientId ?? null, message_id: messageId }), created: true }
    } catch (error) {
      // The same resent at once: the first one's row is there now, and this one wrote nothing.
      const resent = error instanceof UniqueViolation && clientId && (await this.#sent(user, roomId, clientId))
      if (resent) return resent
      throw error
    }
  }

  /** The message the user already sent to the room with `clientId`, while they still play in it. */
  async #sent(user: User, roomId: string, clientId: string): Promise<{ message: Message; created: false } | undefined> {
    const earlier = await this.deps.messageStore.findByClientId(roomId, user.user_id, clientId, this.deps.db)
    if (!earlier) return undefined
    if (!(await this.deps.membership.standing(user, roomId, this.deps.db)).isMember) throw notAPlayer()
    return { message: earlier, created: false }
  }

  /**
   * The messages, their events and their numbers, under the room's lock with no more read than
   * whether each author plays in the open room and, for a group, which of its `client_id`s are
   * taken (by a message stored, or by one before it in the group). A resend is refused as the
   * store's unique key refuses it, and post() answers it the stored message: alone, the key does
   * the check; in a group, the check keeps that key from failing the others.
   */
  #write(roomId: string, sends: Send[]): Promise<Array<PromiseSettledResult<Message>>> {
    const { messageStore, events, membership } = this.deps
    return membership.withStandings(
      sends.map((send) => send.user),
      roomId,
      async (standings, tx) => {
        const taken = sends.length > 1 ? await this.#clientIdsTaken(roomId, sends, tx) : new Set<string>()
        const outcomes: Array<PromiseSettledResult<Message>> = []
        const accepted: Array<{ send: Send; index: number }> = []
        sends.forEach((send, index) => {
          const key = send.client_id === null ? undefined : clientKey(send.user.user_id, send.client_id)
          const refusal = refusalOf(standings[index]!) ?? (key && taken.has(key) ? new UniqueViolation(`client_id ${send.client_id} used before`) : undefined)
          if (refusal) outcomes[index] = { status: 'rejected', reason: refusal }
          else accepted.push({ send, index })
          if (key) taken.add(key)
        })
        const created_at = nowIso()
        const stored = await events.emit(
          tx,
          ...accepted.map(({ send: { user, body, client_id, message_id } }): [string, LobbyEvent] => [
            chatStream(roomId),
            { type: 'message_posted', room_id: roomId, message_id, author_id: user.user_id, body, client_id, created_at },
          ]),
        )
        const messages = accepted.map(({ send: { user, body, client_id, message_id } }, at) => ({
          message_id,
          room_id: roomId,
          seq: stored[at]!.seq,
          author_id: user.user_id,
          client_id,
          body,
          created_at,
        }))
        await messageStore.insert(messages, tx)
        accepted.forEach(({ send, index }, at) => {
          outcomes[index] = { status: 'fulfilled', value: { ...messages[at]!, author_name: send.user.username, edited_at: null, deleted_at: null } }
        })
        return outcomes
      },
    )
  }

  async #clientIdsTaken(roomId: string, sends: Send[], tx: Transaction): Promise<Set<string>> {
    const named = sends.filter((send) => send.client_id !== null)
    if (named.length === 0) return new Set()
    const distinct = (values: string[]) => [...new Set(values)]
    const rows = await this.deps.messageStore.clientIdsTaken(
      roomId,
      distinct(named.map((send) => send.user.user_id)),
      distinct(named.map((send) => send.client_id!)),
      tx,
    )
    return new Set(rows.map((row) => clientKey(row.author_id, row.client_id)))
  }

  /** A page of the room's history, newest first, with cursors to the pages around it. */
  async history(user: User, roomId: string, query: HistoryRequest) {
    const { isMember } = await this.deps.membership.access(user, roomId, this.deps.db)
    if (!isMember && user.user_role !== 'admin') throw forbidden('not_a_player', "Only the room's players read its chat")
    const { messages, more } = await this.deps.messageStore.page(roomId, seqRange(query), this.deps.db.reader)
    return historyPage(messages, more, query)
  }

  /** Its author changes a message, while they play in the open room. Counts as a message sent (MESSAGE_RATE_LIMIT). */
  async edit(user: User, roomId: string, messageId: string, text: string): Promise<Message> {
    const body = this.#checked(text)
    await this.deps.sent.consume(user.user_id)
    return this.deps.membership.withRoom(user, roomId, async ({ room, isMember }, tx) => {
      // Whether the caller may write here comes before whether the message exists: no probing for ids.
      if (!isMember) throw forbidden('not_author', 'Only its author, while in the room, edits a message')
      const message = await this.#require(roomId, messageId, tx)
      if (message.author_id !== user.user_id) throw forbidden('not_author', 'Only its author, while in the room, edits a message')
      if (room.is_closed) throw conflict('room_closed', 'The room is closed')
      if (message.deleted_at) throw conflict('message_deleted', 'The message was deleted')
      // Each edit is an event a deletion must blank: their number stays small.
      if ((await this.deps.messageStore.countEdits(messageId, tx)) >= MAX_EDITS_PER_MESSAGE)
        throw conflict('edit_limit', `A message can be edited ${MAX_EDITS_PER_MESSAGE} times; write a new one`)
      const edited_at = nowIso()
      const [stored] = await this.deps.events.emit(tx, [chatStream(roomId), { type: 'message_edited', room_id: roomId, message_id: messageId, body, edited_at }])
      await this.deps.messageStore.edit(messageId, body, edited_at, stored!.seq, tx)
      return { ...message, body, edited_at }
    })
  }

  /**
   * Its author (while in the room), the room's owner or an admin deletes a message: its text goes,
   * from the history and from the events that carried it. Deleting it again changes nothing and
   * costs nothing; a deletion counts as a message sent (MESSAGE_RATE_LIMIT).
   */
  async delete(user: User, roomId: string, messageId: string): Promise<void> {
    const { messageStore, membership, events, db } = this.deps
    const seen = await membership.access(user, roomId, db)
    const found = (seen.isMember || seen.canManage) && (await messageStore.find(roomId, messageId, db))
    if (found && !found.deleted_at) await this.deps.sent.consume(user.user_id)
    await membership.withRoom(user, roomId, async ({ isMember, canManage }, tx) => {
      if (!canManage && !isMember) throw forbidden('not_author', 'Only its author, the owner or an admin deletes a message')
      const message = await this.#require(roomId, messageId, tx)
      if (!canManage && message.author_id !== user.user_id) throw forbidden('not_author', 'Only its author, the owner or an admin deletes a message')
      if (message.deleted_at) return
      await messageStore.markDeleted(messageId, nowIso(), tx)
      await events.redactMessage(tx, chatStream(roomId), await messageStore.textEvents(message, tx))
      await events.emit(tx, [chatStream(roomId), { type: 'message_deleted', room_id: roomId, message_id: messageId, deleted_by: user.user_id }])
    })
  }

  /** Every message a user wrote and did not delete, a page at a time: for the export of their data. */
  writtenBy(userId: string): AsyncGenerator<Message[]> {
    const { messageStore, db } = this.deps
    return inPages((after, limit) => messageStore.writtenBy(userId, after, limit, db.reader), (message) => message.message_id, '')
  }

  /** For a user's deletion: their messages stay in the rooms' histories, written by "a deleted user" (no author). */
  async detachAuthor(userId: string): Promise<void> {
    await inBatches((limit) => this.deps.messageStore.detachAuthor(userId, limit, this.deps.db), batchRows(this.deps.db))
  }

  /** Deletes messages older than MESSAGE_RETENTION, in batches. */
  purge(now = Date.now(), batchSize = batchRows(this.deps.db)): Promise<number> {
    const before = isoAfter(-this.deps.policy.retention, now)
    return inBatches((limit) => this.deps.messageStore.deleteOlderThan(before, limit, this.deps.db), batchSize)
  }

  #checked(text: string): string {
    return plainText(text, { field: '/body', maxLength: this.deps.policy.maxLength, visible: true })
  }

  async #require(roomId: string, messageId: string, tx: Parameters<MessageStore['find']>[2]): Promise<Message> {
    const message = await this.deps.messageStore.find(roomId, messageId, tx)
    if (!message) throw notFound('No such message in this room')
    return message
  }
}

/** A message waiting for its room's write. */
interface Send {
  user: User
  body: string
  client_id: string | null
  message_id: string
}

/** At most this many of a room's waiting messages go in one transaction. */
const MAX_MESSAGES_PER_WRITE = 100
/** Messages waiting for one room's write on one instance, at most; past it, 503 (an overloaded store, or a flood from many accounts). */
const MAX_MESSAGES_WAITING = 1000

/** What a message's `client_id` is unique under, in its room: its author and that id. */
const clientKey = (authorId: string, clientId: string) => `${authorId}\n${clientId}`

/** Why the room refuses a message from an author of this standing, if it does. */
const refusalOf = (standing: Standing | ApiError): ApiError | undefined =>
  standing instanceof ApiError ? standing : !standing.isMember ? notAPlayer() : standing.isClosed ? conflict('room_closed', 'The room is closed') : undefined

const notAPlayer = () => forbidden('not_a_player', "Only the room's players write in its chat")

export const MAX_EDITS_PER_MESSAGE = 50
