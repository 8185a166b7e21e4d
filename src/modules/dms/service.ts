import { batchRows, inBatches, inPages } from '../../db/batches'
import type { Database } from '../../db/database'
import type { UserRateLimiter } from '../../db/rate-limits'
import { isoAfter, nowIso } from '../../lib/clock'
import { conflict, forbidden, notFound } from '../../shared/errors'
import { plainText } from '../../shared/text'
import { historyPage, type HistoryRequest, seqRange } from '../../shared/history'
import { type LobbyEvent, userStream } from '../events/model'
import type { EventLog } from '../events/service'
import type { User } from '../users/model'
import type { UserService } from '../users/service'
import type { BlockedUser, Conversation, DirectMessage } from './model'
import type { DirectMessageStore } from './store'

const pairKey = (userA: string, userB: string) => `dm:${[userA, userB].sort().join(':')}`

/**
 * Direct messages between two users. The first message creates the conversation; each message is
 * an event of both users' own streams (which every socket of theirs follows), written in the
 * transaction that stores it. A user who blocks another gets no messages from them, and cannot
 * write to them either until they unblock.
 */
export class DirectMessageService {
  constructor(
    private readonly deps: {
      db: Database
      dmStore: DirectMessageStore
      users: UserService
      events: EventLog
      /** Shared with room chat: MESSAGE_RATE_LIMIT per MESSAGE_RATE_WINDOW, per user. */
      sent: UserRateLimiter
      /** BLOCK_RATE_LIMIT per USER_RATE_WINDOW, per user. */
      blocks: UserRateLimiter
      /** Users one user may have blocked at once. */
      blockQuota: number
      policy: { maxLength: number; retention: number }
    },
  ) {}

  async send(user: User, peerId: string, text: string, clientId?: string): Promise<{ message: DirectMessage; created: boolean }> {
    const body = plainText(text, { field: '/body', maxLength: this.deps.policy.maxLength, visible: true })
    if (peerId === user.user_id) throw conflict('self_target', 'You cannot write to yourself')
    const { dmStore, db } = this.deps
    const known = await dmStore.conversationOf(user.user_id, peerId, db)
    const earlier = known && clientId && (await dmStore.findByClientId(known.conversation_id, user.user_id, clientId, db))
    if (earlier) return { message: earlier, created: false }
    await this.deps.sent.consume(user.user_id)
    return db.transaction(async (tx) => {
      // One conversation per pair, however many first messages race for it.
      await tx.lock(pairKey(user.user_id, peerId))
      if (!(await this.deps.users.findActive(peerId, tx))) throw notFound('No such user')
      if (await dmStore.isBlocked(peerId, user.user_id, tx)) throw forbidden('blocked_by_peer', 'This user does not accept your messages')
      if (await dmStore.isBlocked(user.user_id, peerId, tx)) throw conflict('peer_blocked', 'You blocked this user; unblock them to write')
      const now = nowIso()
      const conversation = (await dmStore.conversationOf(user.user_id, peerId, tx)) ?? (await dmStore.createConversation(user.user_id, peerId, now, tx))
      const resent = clientId && (await dmStore.findByClientId(conversation.conversation_id, user.user_id, clientId, tx))
      if (resent) return { message: resent, created: false }
      const message: DirectMessage = {
        message_id: Bun.randomUUIDv7(),
        conversation_id: conversation.conversation_id,
        seq: await dmStore.nextSeq(conversation.conversation_id, now, tx),
        author_id: user.user_id,
        body,
        client_id: clientId ?? null,
        created_at: now,
      }
      await dmStore.insert(message, tx)
      // One's own messages are read (what the conversation_read event would say, the direct_message says already).
      await dmStore.markRead(conversation.conversation_id, user.user_id, message.seq, tx)
      const event: LobbyEvent = { type: 'direct_message', ...message, author_id: user.user_id, recipient_id: peerId }
      await this.deps.events.emit(tx, [userStream(user.user_id), event], [userStream(peerId), event])
      return { message, created: true }
    })
  }

  list(user: User, page: { limit?: number; offset?: number }) {
    return this.deps.dmStore.list(user.user_id, { limit: page.limit ?? 50, offset: page.offset ?? 0 }, this.deps.db.reader)
  }

  async history(user: User, peerId: string, query: HistoryRequest) {
    const conversation = await this.deps.dmStore.conversationOf(user.user_id, peerId, this.deps.db)
    if (!conversation) return { messages: [], older: null, newer: query.after ?? null }
    const { messages, more } = await this.deps.dmStore.page(conversation.conversation_id, seqRange(query), this.deps.db.reader)
    return historyPage(messages, more, query)
  }

  /**
   * Moves the read marker forward, up to the last message. A marker that does not move writes
   * nothing and tells nobody, so its moves are bounded by the messages (which are rate-limited).
   * The reader's streams hear a move (their other devices); the peer's too (a read receipt),
   * unless either blocked the other.
   */
  async markRead(user: User, peerId: string, seq: number): Promise<{ last_read_seq: number }> {
    const { dmStore, db } = this.deps
    const conversation = await dmStore.conversationOf(user.user_id, peerId, db)
    if (!conversation) throw notFound('No conversation with this user')
    const { conversation_id } = conversation
    const current = await dmStore.readMarker(conversation_id, user.user_id, db)
    if (Math.min(seq, conversation.last_seq) <= current) return { last_read_seq: current }
    return db.transaction(async (tx) => {
      if (!(await dmStore.markRead(conversation_id, user.user_id, seq, tx))) return { last_read_seq: await dmStore.readMarker(conversation_id, user.user_id, tx) }
      const last_read_seq = await dmStore.readMarker(conversation_id, user.user_id, tx)
      const event: LobbyEvent = { type: 'conversation_read', conversation_id, user_id: user.user_id, last_read_seq }
      const receipt: Array<[string, LobbyEvent]> = (await dmStore.eitherBlocked(user.user_id, peerId, tx)) ? [] : [[userStream(peerId), event]]
      await this.deps.events.emit(tx, [userStream(user.user_id), event], ...receipt)
      return { last_read_seq }
    })
  }

  /** Blocks a user, within BLOCK_QUOTA and BLOCK_RATE_LIMIT; blocking them again changes nothing and costs nothing. */
  async block(user: User, targetId: string): Promise<void> {
    if (targetId === user.user_id) throw conflict('self_target', 'You cannot block yourself')
    const { dmStore, db, blockQuota } = this.deps
    if (await dmStore.isBlocked(user.user_id, targetId, db)) return
    await this.deps.blocks.consume(user.user_id)
    await db.transaction(async (tx) => {
      // Concurrent blocks by one user count one after the other.
      await tx.lock(`blocks-of:${user.user_id}`)
      // The lock a send to or from them holds: a block confirmed is never followed by a message.
      await tx.lock(pairKey(user.user_id, targetId))
      if (!(await this.deps.users.findActive(targetId, tx))) throw notFound('No such user')
      if (await dmStore.isBlocked(user.user_id, targetId, tx)) return
      if ((await dmStore.countBlocked(user.user_id, tx)) >= blockQuota) throw conflict('quota_reached', `You have blocked ${blockQuota} users, the most allowed; unblock some first`)
      await dmStore.block(user.user_id, targetId, nowIso(), tx)
    })
  }

  async unblock(user: User, targetId: string): Promise<void> {
    const { dmStore, db } = this.deps
    if (!(await dmStore.isBlocked(user.user_id, targetId, db))) return
    await this.deps.blocks.consume(user.user_id)
    await dmStore.unblock(user.user_id, targetId, db)
  }

  blocked(user: User, page: { limit?: number; offset?: number }) {
    return this.deps.dmStore.blocked(user.user_id, { limit: page.limit ?? 50, offset: page.offset ?? 0 }, this.deps.db.reader)
  }

  /** Every conversation of a user, with its peer, a page at a time: for the export of their data. */
  conversationsOf(userId: string): AsyncGenerator<Array<Pick<Conversation, 'conversation_id' | 'peer'>>> {
    const { dmStore, db } = this.deps
    return inPages((after, limit) => dmStore.conversationsOf(userId, after, limit, db.reader), (conversation) => conversation.conversation_id, '')
  }

  /** Everyone a user blocked, a page at a time: for the export of their data. */
  blocksOf(userId: string): AsyncGenerator<BlockedUser[]> {
    const { dmStore, db } = this.deps
    return inPages((after, limit) => dmStore.blockedAfter(userId, after, limit, db.reader), (blocked) => blocked.user_id, '')
  }

  /** Every message of a conversation, a page at a time (its participant asked, through conversationsOf). */
  messagesIn(conversationId: string): AsyncGenerator<DirectMessage[]> {
    const { dmStore, db } = this.deps
    return inPages((after, limit) => dmStore.messagesAfter(conversationId, after, limit, db.reader), (message) => message.seq, 0)
  }

  /** For a user's deletion: their conversations go with them, the messages first, in batches. */
  async forget(userId: string): Promise<void> {
    await inBatches((limit) => this.deps.dmStore.deleteMessagesWith(userId, limit, this.deps.db), batchRows(this.deps.db))
  }

  /** Deletes direct messages older than MESSAGE_RETENTION, in batches. */
  purge(now = Date.now(), batchSize = batchRows(this.deps.db)): Promise<number> {
    const before = isoAfter(-this.deps.policy.retention, now)
    return inBatches((limit) => this.deps.dmStore.deleteOlderThan(before, limit, this.deps.db), batchSize)
  }
}
