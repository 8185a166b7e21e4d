import type { Migration } from './migration'

export default {
  version: 11,
  name: 'direct messages and blocks',
  // A conversation is a pair of users (user_a < user_b); its counter numbers its messages.
  statements: () => [
    `CREATE TABLE conversations (
      conversation_id TEXT PRIMARY KEY,
      user_a TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      user_b TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      last_seq INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      UNIQUE (user_a, user_b)
    )`,
    'CREATE INDEX conversations_user_b ON conversations (user_b)',
    `CREATE TABLE direct_messages (
      message_id TEXT PRIMARY KEY,
      conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      author_id TEXT REFERENCES users (user_id) ON DELETE SET NULL,
      client_id TEXT,
      body TEXT NOT NULL,
      created_at TEXT NOT NULL,
      UNIQUE (conversation_id, seq),
      UNIQUE (conversation_id, author_id, client_id)
    )`,
    'CREATE INDEX direct_messages_created_at ON direct_messages (created_at)',
    `CREATE TABLE read_markers (
      conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
      user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      last_read_seq INTEGER NOT NULL,
      PRIMARY KEY (conversation_id, user_id)
    )`,
    `CREATE TABLE blocks (
      blocker_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      blocked_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      created_at TEXT NOT NULL,
      PRIMARY KEY (blocker_id, blocked_id)
    )`,
  ],
} satisfies Migration
