import type { Migration } from './migration'

export default {
  version: 24,
  name: 'relay positions',
  // How far a relay of the log (the broker's) has published: the position of the last event it had
  // confirmed and everything before it. Recorded after each confirm; the log keeps what comes after.
  statements: () => ['CREATE TABLE relay_positions (relay TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at TEXT NOT NULL)'],
} satisfies Migration
