import type { Migration } from './migration'

export default {
  version: 5,
  name: 'sessions by expiry',
  // The purge finds ended sessions, and the sessions_active gauge live ones, without reading them all.
  statements: () => ['CREATE INDEX sessions_expires_at ON sessions (expires_at)'],
} satisfies Migration
