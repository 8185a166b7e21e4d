import type { Migration } from './migration'

export default {
  version: 9,
  name: 'room chat',
  // A message's number is its event's in the room's chat stream: history pages by it, with no ties.
  statements: () => [
    `CREATE TABLE messages (
      message_id TEXT PRIMARY KEY,
      room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      author_id TEXT REFERENCES users(user_id) ON DELETE SET NULL,
      client_id TEXT,
      body TEXT NOT NULL,
      created_at TEXT NOT NULL,
      edited_at TEXT,
      deleted_at TEXT,
      UNIQUE (room_id, seq),
      UNIQUE (room_id, author_id, client_id)
    )`,
    'CREATE INDEX messages_created_at ON messages (created_at)',
  ],
} satisfies Migration
