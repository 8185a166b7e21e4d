import type { Migration } from './migration'

export default {
  version: 15,
  name: 'log positions',
  // One position per event across the whole log, allocated as its transaction ends, so that a
  // reader of every stream (a relay, a cache) has one cursor. Events written before are numbered in
  // the order they were written.
  statements: (_, dialect) => [
    'ALTER TABLE events ADD COLUMN position BIGINT',
    `UPDATE events SET position = numbered.position
       FROM (SELECT stream, seq, ROW_NUMBER() OVER (ORDER BY created_at, stream, seq) AS position FROM events) AS numbered
      WHERE events.stream = numbered.stream AND events.seq = numbered.seq`,
    'CREATE UNIQUE INDEX events_position ON events (position)',
    // PostgreSQL hands positions out from a sequence, which never waits on another transaction;
    // SQLite writes one transaction at a time, so a counter row is as good.
    ...(dialect === 'postgres'
      ? ['CREATE SEQUENCE events_position_seq', "SELECT setval('events_position_seq', COALESCE(MAX(position), 0) + 1, false) FROM events"]
      : [
          'CREATE TABLE event_log_head (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL)',
          'INSERT INTO event_log_head (id, position) SELECT 1, COALESCE(MAX(position), 0) FROM events',
        ]),
  ],
} satisfies Migration
