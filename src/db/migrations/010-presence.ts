import type { Migration } from './migration'

export default {
  version: 10,
  name: 'presence',
  // A row per user and instance with sockets open; an instance renews its rows, and rows it stops renewing (it died) go stale.
  statements: () => [
    `CREATE TABLE presence (
      user_id TEXT NOT NULL,
      instance_id TEXT NOT NULL,
      seen_at TEXT NOT NULL,
      PRIMARY KEY (user_id, instance_id)
    )`,
    'CREATE INDEX presence_seen_at ON presence (seen_at)',
  ],
} satisfies Migration
