import type { Migration } from './migration'

export default {
  version: 22,
  name: 'qr login requests',
  // A desktop's request to be logged in by a phone: the code its QR shows is kept only as a hash,
  // the key it proves itself with only as its public half; the session that decided it, which must
  // still be live when the desktop exchanges it. Rows go once they expire.
  statements: () => [
    `CREATE TABLE login_requests (
      request_id TEXT PRIMARY KEY,
      code_hash TEXT NOT NULL UNIQUE,
      public_key TEXT NOT NULL,
      address TEXT NOT NULL,
      user_agent TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'exchanged')),
      decided_by TEXT,
      decided_session TEXT,
      created_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      polled_at TEXT,
      decided_at TEXT
    )`,
    'CREATE INDEX login_requests_by_expiry ON login_requests (expires_at)',
  ],
} satisfies Migration
