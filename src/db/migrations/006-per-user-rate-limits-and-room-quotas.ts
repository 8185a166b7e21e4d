import type { Migration } from './migration'

export default {
  version: 6,
  name: 'per-user rate limits and room quotas',
  statements: () => [
    `CREATE TABLE rate_limits (
      bucket TEXT PRIMARY KEY,
      hits INTEGER NOT NULL,
      window_started_at TEXT NOT NULL
    )`,
    // The room quota counts a user's open rooms at every creation.
    'CREATE INDEX rooms_owner_id ON rooms (owner_id, is_closed)',
  ],
} satisfies Migration
