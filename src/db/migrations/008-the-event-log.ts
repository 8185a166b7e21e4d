import type { Migration } from './migration'

export default {
  version: 8,
  name: 'the event log',
  // Per-stream numbers: a stream's row is held by the transaction that takes its next number.
  statements: () => [
    'CREATE TABLE event_streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL)',
    `CREATE TABLE events (
      stream TEXT NOT NULL,
      seq INTEGER NOT NULL,
      type TEXT NOT NULL,
      payload TEXT NOT NULL,
      created_at TEXT NOT NULL,
      PRIMARY KEY (stream, seq)
    )`,
    'CREATE INDEX events_created_at ON events (created_at)',
  ],
} satisfies Migration
