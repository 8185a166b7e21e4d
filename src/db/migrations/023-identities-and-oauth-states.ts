import type { Migration } from './migration'

export default {
  version: 23,
  name: 'identities and oauth states',
  // An identity is a way in at a provider (Yandex ID, an OIDC server): one per provider and user,
  // one user per account of a provider. A state is one sign-in under way: its PKCE verifier, kept
  // here, and what it is for; the state, and the secret the starting page holds, only as hashes.
  statements: () => [
    `CREATE TABLE identities (
      identity_id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      provider TEXT NOT NULL,
      subject TEXT NOT NULL,
      email TEXT,
      login TEXT,
      created_at TEXT NOT NULL,
      last_sign_in_at TEXT NOT NULL,
      UNIQUE (provider, subject),
      UNIQUE (user_id, provider)
    )`,
    `CREATE TABLE oauth_states (
      state_hash TEXT PRIMARY KEY,
      secret_hash TEXT NOT NULL,
      provider TEXT NOT NULL,
      code_verifier TEXT NOT NULL,
      user_id TEXT,
      created_at TEXT NOT NULL,
      expires_at TEXT NOT NULL
    )`,
    'CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at)',
  ],
} satisfies Migration
