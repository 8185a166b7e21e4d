import type { Migration } from './migration'

export default {
  version: 26,
  name: 'presence by instance',
  // Liveness moves from each presence row to its instance: a renewal writes one row, not one per
  // user online (100,000 players over 8 instances were 10,000 updated rows a second, bloating the
  // table and its seen_at index faster than vacuum took them away). presence.seen_at now says when
  // the row was written. Every instance of this version renews here: run one version at a time.
  statements: () => [
    'CREATE TABLE presence_instances (instance_id TEXT PRIMARY KEY, seen_at TEXT NOT NULL)',
    'INSERT INTO presence_instances (instance_id, seen_at) SELECT instance_id, MAX(seen_at) FROM presence GROUP BY instance_id',
    'DROP INDEX presence_seen_at',
  ],
} satisfies Migration
