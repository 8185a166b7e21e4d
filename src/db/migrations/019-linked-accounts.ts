import type { Migration } from './migration'

export default {
  version: 19,
  name: 'linked accounts',
  // One account per network and user; one user per account of a network (a sign-in with it must find one user).
  statements: () => [
    `CREATE TABLE linked_accounts (
      linked_account_id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      social_network TEXT NOT NULL,
      connection_link TEXT NOT NULL,
      connected_for TEXT NOT NULL,
      connected_at TEXT NOT NULL,
      UNIQUE (user_id, social_network),
      UNIQUE (social_network, connection_link)
    )`,
  ],
} satisfies Migration
