import type { Migration } from './migration'

export default {
  version: 1,
  name: 'accounts and sessions',
  statements: ({ boolean }) => [
    `CREATE TABLE users (
      user_id TEXT PRIMARY KEY,
      username TEXT NOT NULL,
      password_hash TEXT NOT NULL,
      user_role TEXT NOT NULL CHECK (user_role IN ('user', 'admin')),
      is_active ${boolean} NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
    'CREATE UNIQUE INDEX users_username_key ON users (lower(username))',
    'CREATE INDEX users_created_at ON users (created_at)',
    `CREATE TABLE sessions (
      session_id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
      created_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      revoked_at TEXT,
      revoked_reason TEXT
    )`,
    'CREATE INDEX sessions_user_id ON sessions (user_id)',
    `CREATE TABLE refresh_tokens (
      token_hash TEXT PRIMARY KEY,
      session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
      issued_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      rotated_at TEXT
    )`,
    'CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id)',
    `CREATE TABLE login_throttle (
      throttle_key TEXT PRIMARY KEY,
      failures INTEGER NOT NULL,
      window_started_at TEXT NOT NULL,
      locked_until TEXT
    )`,
    'CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
  ],
} satisfies Migration
