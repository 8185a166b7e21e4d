import type { Migration } from './migration'

export default {
  version: 12,
  name: 'the edits of each message',
  // A deletion blanks the text of a message's events by their keys, instead of scanning the chat stream's log for them.
  statements: (_, dialect) => {
    const messageId = dialect === 'postgres' ? "payload::json->>'message_id'" : "json_extract(payload, '$.message_id')"
    return [
      `CREATE TABLE message_edits (
        message_id TEXT NOT NULL REFERENCES messages (message_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        PRIMARY KEY (message_id, seq)
      )`,
      `INSERT INTO message_edits (message_id, seq)
       SELECT ${messageId}, seq FROM events WHERE type = 'message_edited' AND ${messageId} IN (SELECT message_id FROM messages)`,
    ]
  },
} satisfies Migration
