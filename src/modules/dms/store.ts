import type { Queryable } from '../../db/database'
import { pageBySeq, readPage, type SeqRange } from '../../db/page'
import type { BlockedUser, Conversation, DirectMessage } from './model'

interface ConversationRow {
  conversation_id: string
  user_a: string
  user_b: string
  last_seq: number
}

interface ConversationListRow {
  conversation_id: string
  peer_id: string
  peer_name: string
  peer_display_name: string | null
  peer_avatar_url: string | null
  updated_at: string
  last_seq: number
  last_read_seq: number
  /** The number of the oldest message left (null when all were purged). */
  first_seq: number | null
  /** The last message's, null when it was purged. */
  message_id: string | null
  author_id: string | null
  body: string | null
  client_id: string | null
  created_at: string | null
}

const MESSAGE_COLUMNS = 'message_id, conversation_id, seq, author_id, body, client_id, created_at'
const toMessage = (row: DirectMessage): DirectMessage => ({ ...row, seq: Number(row.seq) })

/** Conversations between two users, their messages, read markers, and blocks. */
export class DirectMessageStore {
  async conversationOf(userA: string, userB: string, q: Queryable): Promise<ConversationRow | undefined> {
    const [a, b] = [userA, userB].sort() as [string, string]
    const row = await q.get<ConversationRow>('SELECT conversation_id, user_a, user_b, last_seq FROM conversations WHERE user_a = $1 AND user_b = $2', [a, b])
    return row && { ...row, last_seq: Number(row.last_seq) }
  }

  async createConversation(userA: string, userB: string, now: string, q: Queryable): Promise<ConversationRow> {
    const [a, b] = [userA, userB].sort() as [string, string]
    const conversation_id = Bun.randomUUIDv7()
    await q.run('INSERT INTO conversations (conversation_id, user_a, user_b, last_seq, created_at, updated_at) VALUES ($1, $2, $3, 0, $4, $4)', [
      conversation_id,
      a,
      b,
      now,
    ])
    return { conversation_id, user_a: a, user_b: b, last_seq: 0 }
  }

  /** The conversation's next message number, taken under its row lock. */
  async nextSeq(conversationId: string, now: string, q: Queryable): Promise<number> {
    const row = await q.get<{ last_seq: number }>(
      'UPDATE conversations SET last_seq = last_seq + 1, updated_at = $2 WHERE conversation_id = $1 RETURNING last_seq',
      [conversationId, now],
    )
    return Number(row?.last_seq)
  }

  async insert(message: DirectMessage, q: Queryable): Promise<void> {
    await q.run(`INSERT INTO direct_messages (${MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      message.message_id,
      message.conversation_id,
      message.seq,
      message.author_id,
      message.body,
      message.client_id,
      message.created_at,
    ])
  }

  async findByClientId(conversationId: string, authorId: string, clientId: string, q: Queryable): Promise<DirectMessage | undefined> {
    const row = await q.get<DirectMessage>(`SELECT ${MESSAGE_COLUMNS} FROM direct_messages WHERE conversation_id = $1 AND author_id = $2 AND client_id = $3`, [
      conversationId,
      authorId,
      clientId,
    ])
    return row && toMessage(row)
  }

  /** Up to `limit` of a user's conversations, in id order after `afterId`, each with its peer. */
  conversationsOf(userId: string, afterId: string, limit: number, q: Queryable): Promise<Array<Pick<Conversation, 'conversation_id' | 'peer'>>> {
    return q
      .all<{ conversation_id: string; user_id: string; username: string; display_name: string | null; avatar_url: string | null }>(
        `SELECT c.conversation_id, u.user_id, u.username, u.display_name, u.avatar_url
           FROM conversations c JOIN users u ON u.user_id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END
          WHERE (c.user_a = $1 OR c.user_b = $1) AND c.conversation_id > $2
          ORDER BY c.conversation_id LIMIT $3`,
        [userId, afterId, limit],
      )
      .then((rows) => rows.map(({ conversation_id, ...peer }) => ({ conversation_id, peer })))
  }

  /** Up to `limit` messages of a conversation, in order after number `afterSeq`. */
  async messagesAfter(conversationId: string, afterSeq: number, limit: number, q: Queryable): Promise<DirectMessage[]> {
    const rows = await q.all<DirectMessage>(
      `SELECT ${MESSAGE_COLUMNS} FROM direct_messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [conversationId, afterSeq, limit],
    )
    return rows.map(toMessage)
  }

  async page(conversationId: string, range: SeqRange, q: Queryable) {
    const { rows, more } = await pageBySeq<DirectMessage>(q, `SELECT ${MESSAGE_COLUMNS} FROM direct_messages WHERE conversation_id = $1`, conversationId, range)
    return { messages: rows.map(toMessage), more }
  }

  /**
   * Moves the user's read marker forward to `seq` (never back, nor past the conversation's last
   * message). Answers whether it moved: of several moves to one place at once, exactly one does.
   */
  async markRead(conversationId: string, userId: string, seq: number, q: Queryable): Promise<boolean> {
    const moved = await q.get(
      `INSERT INTO read_markers (conversation_id, user_id, last_read_seq)
       SELECT $1, $2, CASE WHEN $3 < last_seq THEN $3 ELSE last_seq END FROM conversations WHERE conversation_id = $1
       ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_read_seq = excluded.last_read_seq
         WHERE excluded.last_read_seq > read_markers.last_read_seq
       RETURNING last_read_seq`,
      [conversationId, userId, seq],
    )
    return moved !== undefined
  }

  /** Where the user's read marker stands (0 before they read anything). */
  async readMarker(conversationId: string, userId: string, q: Queryable): Promise<number> {
    const row = await q.get<{ last_read_seq: number }>('SELECT last_read_seq FROM read_markers WHERE conversation_id = $1 AND user_id = $2', [
      conversationId,
      userId,
    ])
    return Number(row?.last_read_seq ?? 0)
  }

  /**
   * The user's conversations, latest first, each with the peer, the last message, and what is
   * unread: every message after the user's marker is the peer's (writing moves one's own marker),
   * so it is a subtraction, from the oldest message MESSAGE_RETENTION left.
   */
  async list(userId: string, page: { limit: number; offset: number }, q: Queryable): Promise<{ conversations: Conversation[]; total: number }> {
    const { rows, total } = await readPage<ConversationListRow>(
      q,
      {
        // The page of conversations first; the peer, the marker and the messages for its rows only.
        rows: (page) => `SELECT c.conversation_id, u.user_id AS peer_id, u.username AS peer_name, u.display_name AS peer_display_name, u.avatar_url AS peer_avatar_url, c.updated_at, c.last_seq,
             COALESCE(r.last_read_seq, 0) AS last_read_seq,
             (SELECT MIN(o.seq) FROM direct_messages o WHERE o.conversation_id = c.conversation_id) AS first_seq,
             m.message_id, m.author_id, m.body, m.client_id, m.created_at
           FROM (SELECT conversation_id, user_a, user_b, updated_at, last_seq FROM conversations WHERE user_a = $1 OR user_b = $1
                 ORDER BY updated_at DESC, conversation_id DESC ${page}) c
           JOIN users u ON u.user_id = CASE WHEN c.user_a = $1 THEN c.user_b ELSE c.user_a END
           LEFT JOIN read_markers r ON r.conversation_id = c.conversation_id AND r.user_id = $1
           LEFT JOIN direct_messages m ON m.conversation_id = c.conversation_id AND m.seq = c.last_seq
           ORDER BY c.updated_at DESC, c.conversation_id DESC`,
        count: 'SELECT COUNT(*) AS total FROM conversations WHERE user_a = $1 OR user_b = $1',
        params: [userId],
      },
      page.limit,
      page.offset,
    )
    const conversations = rows.map((row) => {
      const last_seq = Number(row.last_seq)
      const last_read_seq = Number(row.last_read_seq)
      // What MESSAGE_RETENTION purged is not unread: counted from the oldest message left.
      const unread = row.first_seq === null ? 0 : last_seq - Math.max(last_read_seq, Number(row.first_seq) - 1)
      return {
        conversation_id: row.conversation_id,
        peer: { user_id: row.peer_id, username: row.peer_name, display_name: row.peer_display_name, avatar_url: row.peer_avatar_url },
        last_message:
          row.message_id === null
            ? null
            : {
                message_id: row.message_id,
                conversation_id: row.conversation_id,
                seq: last_seq,
                author_id: row.author_id,
                body: row.body!,
                client_id: row.client_id,
                created_at: row.created_at!,
              },
        unread_count: unread,
        last_read_seq,
        updated_at: row.updated_at,
      }
    })
    return { conversations, total: Number(total) }
  }

  async isBlocked(blockerId: string, blockedId: string, q: Queryable): Promise<boolean> {
    return (await q.get('SELECT 1 AS found FROM blocks WHERE blocker_id = $1 AND blocked_id = $2', [blockerId, blockedId])) !== undefined
  }

  /** Whether either of two users blocked the other. */
  async eitherBlocked(userA: string, userB: string, q: Queryable): Promise<boolean> {
    const found = await q.get('SELECT 1 AS found FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)', [userA, userB])
    return found !== undefined
  }

  async block(blockerId: string, blockedId: string, now: string, q: Queryable): Promise<void> {
    await q.run('INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (blocker_id, blocked_id) DO NOTHING', [
      blockerId,
      blockedId,
      now,
    ])
  }

  async unblock(blockerId: string, blockedId: string, q: Queryable): Promise<void> {
    await q.run('DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2', [blockerId, blockedId])
  }

  async blocked(blockerId: string, page: { limit: number; offset: number }, q: Queryable) {
    const { rows, total } = await readPage<{ user_id: string; username: string; blocked_at: string }>(
      q,
      {
        rows: 'SELECT u.user_id, u.username, b.created_at AS blocked_at FROM blocks b JOIN users u ON u.user_id = b.blocked_id WHERE b.blocker_id = $1 ORDER BY b.created_at DESC, u.user_id',
        count: 'SELECT COUNT(*) AS total FROM blocks WHERE blocker_id = $1',
        params: [blockerId],
      },
      page.limit,
      page.offset,
    )
    return { blocked: rows, total: Number(total) }
  }

  /** Up to `limit` of the users `blockerId` blocked, in id order after `afterUserId` (the primary key's order). */
  blockedAfter(blockerId: string, afterUserId: string, limit: number, q: Queryable): Promise<BlockedUser[]> {
    return q.all<BlockedUser>(
      `SELECT u.user_id, u.username, b.created_at AS blocked_at FROM blocks b JOIN users u ON u.user_id = b.blocked_id
        WHERE b.blocker_id = $1 AND b.blocked_id > $2 ORDER BY b.blocked_id LIMIT $3`,
      [blockerId, afterUserId, limit],
    )
  }

  async countBlocked(blockerId: string, q: Queryable): Promise<number> {
    const row = await q.get<{ total: number }>('SELECT COUNT(*) AS total FROM blocks WHERE blocker_id = $1', [blockerId])
    return Number(row?.total ?? 0)
  }

  /** Deletes up to `limit` messages of the user's conversations (which go with their account). */
  deleteMessagesWith(userId: string, limit: number, q: Queryable): Promise<number> {
    return q.run(
      `DELETE FROM direct_messages WHERE message_id IN (SELECT m.message_id FROM direct_messages m
         JOIN conversations c ON c.conversation_id = m.conversation_id WHERE c.user_a = $1 OR c.user_b = $1 LIMIT $2)`,
      [userId, limit],
    )
  }

  deleteOlderThan(before: string, limit: number, q: Queryable): Promise<number> {
    return q.run('DELETE FROM direct_messages WHERE message_id IN (SELECT message_id FROM direct_messages WHERE created_at < $1 LIMIT $2)', [before, limit])
  }
}
