import type { Queryable } from '../../db/database'
import { inList, valuesList } from '../../db/in-list'
import { pageBySeq, type SeqRange } from '../../db/page'
import type { Message } from './model'

type NewMessage = Omit<Message, 'author_name' | 'edited_at' | 'deleted_at'>

const COLUMNS = `m.message_id, m.room_id, m.seq, m.author_id, u.username AS author_name, m.body, m.client_id,
  m.created_at, m.edited_at, m.deleted_at
  FROM messages m LEFT JOIN users u ON u.user_id = m.author_id`

const toMessage = (row: Message): Message => ({ ...row, seq: Number(row.seq) })

/** Room chat messages: their text, and their number in the room's chat stream, which orders them. */
export class MessageStore {
  /** Writes messages in one statement (a room's messages written together). */
  async insert(messages: NewMessage[], q: Queryable): Promise<void> {
    if (messages.length === 0) return
    const { marks, params } = valuesList(
      messages.map((message) => [message.message_id, message.room_id, message.seq, message.author_id, message.client_id, message.body, message.created_at]),
    )
    await q.run(`INSERT INTO messages (message_id, room_id, seq, author_id, client_id, body, created_at) VALUES ${marks}`, params)
  }

  /** Of these authors' `client_id`s, those a message of the room already has: read by the unique key's own index. */
  clientIdsTaken(roomId: string, authorIds: string[], clientIds: string[], q: Queryable): Promise<Array<{ author_id: string; client_id: string }>> {
    const authors = inList(authorIds, 2)
    const clients = inList(clientIds, 2 + authors.params.length)
    return q.all(`SELECT author_id, client_id FROM messages WHERE room_id = $1 AND author_id IN (${authors.marks}) AND client_id IN (${clients.marks})`, [
      roomId,
      ...authors.params,
      ...clients.params,
    ])
  }

  async find(roomId: string, messageId: string, q: Queryable): Promise<Message | undefined> {
    const row = await q.get<Message>(`SELECT ${COLUMNS} WHERE m.room_id = $1 AND m.message_id = $2`, [roomId, messageId])
    return row && toMessage(row)
  }

  async findByClientId(roomId: string, authorId: string, clientId: string, q: Queryable): Promise<Message | undefined> {
    const row = await q.get<Message>(`SELECT ${COLUMNS} WHERE m.room_id = $1 AND m.author_id = $2 AND m.client_id = $3`, [roomId, authorId, clientId])
    return row && toMessage(row)
  }

  /** Up to `limit` messages a user wrote and did not delete, in id (and so time) order after `afterMessageId`. */
  async writtenBy(userId: string, afterMessageId: string, limit: number, q: Queryable): Promise<Message[]> {
    const rows = await q.all<Message>(
      `SELECT ${COLUMNS} WHERE m.author_id = $1 AND m.message_id > $2 AND m.deleted_at IS NULL ORDER BY m.message_id LIMIT $3`,
      [userId, afterMessageId, limit],
    )
    return rows.map(toMessage)
  }

  async page(roomId: string, range: SeqRange, q: Queryable): Promise<{ messages: Message[]; more: boolean }> {
    const { rows, more } = await pageBySeq<Message>(q, `SELECT ${COLUMNS} WHERE m.room_id = $1`, roomId, range)
    return { messages: rows.map(toMessage), more }
  }

  /** A new text, and the number of the event that carries it. */
  async edit(messageId: string, body: string, now: string, seq: number, q: Queryable): Promise<void> {
    await q.run('UPDATE messages SET body = $2, edited_at = $3 WHERE message_id = $1', [messageId, body, now])
    await q.run('INSERT INTO message_edits (message_id, seq) VALUES ($1, $2)', [messageId, seq])
  }

  async countEdits(messageId: string, q: Queryable): Promise<number> {
    const row = await q.get<{ edits: number }>('SELECT COUNT(*) AS edits FROM message_edits WHERE message_id = $1', [messageId])
    return Number(row?.edits ?? 0)
  }

  /** The numbers of the chat stream's events that carried the message's text: its posting, then each edit. */
  async textEvents(message: Message, q: Queryable): Promise<number[]> {
    const edits = await q.all<{ seq: number }>('SELECT seq FROM message_edits WHERE message_id = $1 ORDER BY seq', [message.message_id])
    return [message.seq, ...edits.map((edit) => Number(edit.seq))]
  }

  /** A deleted message keeps its place (pages stay stable) and loses its text. */
  async markDeleted(messageId: string, now: string, q: Queryable): Promise<void> {
    await q.run("UPDATE messages SET body = '', deleted_at = $2 WHERE message_id = $1", [messageId, now])
  }

  /** Leaves up to `limit` of the user's messages without an author (their account is going). */
  detachAuthor(userId: string, limit: number, q: Queryable): Promise<number> {
    return q.run('UPDATE messages SET author_id = NULL WHERE message_id IN (SELECT message_id FROM messages WHERE author_id = $1 LIMIT $2)', [userId, limit])
  }

  deleteOlderThan(before: string, limit: number, q: Queryable): Promise<number> {
    return q.run('DELETE FROM messages WHERE message_id IN (SELECT message_id FROM messages WHERE created_at < $1 LIMIT $2)', [before, limit])
  }
}
