import type { Database, Dialect } from './database'

interface Migration {
  version: number
  name: string
  statements: (types: ColumnTypes, dialect: Dialect) => string[]
}

interface ColumnTypes {
  boolean: string
}

const COLUMN_TYPES: Record<Dialect, ColumnTypes> = {
  sqlite: { boolean: 'INTEGER' },
  postgres: { boolean: 'BOOLEAN' },
}

/**
 * Triggers that keep `user_counts` equal to `SELECT user_role, is_active, count(*) FROM users GROUP BY 1, 2`
 * in the same transaction as the change. A role or status change moves one user between two rows;
 * PostgreSQL takes those two row locks in key order, so two opposite moves cannot deadlock.
 */
const USER_COUNT_TRIGGERS: Record<Dialect, string[]> = {
  sqlite: [
    `CREATE TRIGGER users_counted_on_insert AFTER INSERT ON users BEGIN
      INSERT INTO user_counts (user_role, is_active, total) VALUES (NEW.user_role, NEW.is_active, 1)
        ON CONFLICT (user_role, is_active) DO UPDATE SET total = total + 1;
    END`,
    `CREATE TRIGGER users_counted_on_delete AFTER DELETE ON users BEGIN
      UPDATE user_counts SET total = total - 1 WHERE user_role = OLD.user_role AND is_active = OLD.is_active;
    END`,
    `CREATE TRIGGER users_counted_on_update AFTER UPDATE OF user_role, is_active ON users
      WHEN OLD.user_role <> NEW.user_role OR OLD.is_active <> NEW.is_active BEGIN
      UPDATE user_counts SET total = total - 1 WHERE user_role = OLD.user_role AND is_active = OLD.is_active;
      INSERT INTO user_counts (user_role, is_active, total) VALUES (NEW.user_role, NEW.is_active, 1)
        ON CONFLICT (user_role, is_active) DO UPDATE SET total = total + 1;
    END`,
  ],
  postgres: [
    `CREATE FUNCTION user_counts_add(role TEXT, active BOOLEAN, delta INTEGER) RETURNS void LANGUAGE sql AS $$
      INSERT INTO user_counts (user_role, is_active, total) VALUES (role, active, delta)
        ON CONFLICT (user_role, is_active) DO UPDATE SET total = user_counts.total + delta
    $$`,
    `CREATE FUNCTION users_counted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, 1);
      ELSIF TG_OP = 'DELETE' THEN
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, -1);
      ELSIF (OLD.user_role, OLD.is_active) < (NEW.user_role, NEW.is_active) THEN
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, -1);
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, 1);
      ELSIF (OLD.user_role, OLD.is_active) > (NEW.user_role, NEW.is_active) THEN
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, 1);
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, -1);
      END IF;
      RETURN NULL;
    END
    $$`,
    'CREATE TRIGGER users_counted AFTER INSERT OR DELETE OR UPDATE OF user_role, is_active ON users FOR EACH ROW EXECUTE FUNCTION users_counted()',
  ],
}

// Timestamps are ISO-8601 UTC text with milliseconds: they sort and compare as text on both stores.
const MIGRATIONS: Migration[] = [
  {
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
  },
  {
    version: 2,
    name: 'rooms and invitations',
    statements: ({ boolean }) => [
      `CREATE TABLE rooms (
        room_id TEXT PRIMARY KEY,
        room_name TEXT NOT NULL,
        owner_id TEXT REFERENCES users (user_id) ON DELETE SET NULL,
        max_players INTEGER NOT NULL CHECK (max_players >= 1),
        is_closed ${boolean} NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
      'CREATE INDEX rooms_created_at ON rooms (created_at)',
      `CREATE TABLE room_players (
        room_id TEXT NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        game_role TEXT NOT NULL,
        joined_at TEXT NOT NULL,
        PRIMARY KEY (room_id, user_id)
      )`,
      'CREATE INDEX room_players_user_id ON room_players (user_id)',
      `CREATE TABLE invitations (
        invite_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
        inviter_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        receiver_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        player_role TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'expired')),
        ct TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      )`,
      // One pending invitation per receiver and room; expired ones are settled before a new one is made.
      "CREATE UNIQUE INDEX invitations_pending_once ON invitations (room_id, receiver_id) WHERE status = 'pending'",
      'CREATE INDEX invitations_receiver_id ON invitations (receiver_id, created_at)',
      'CREATE INDEX invitations_inviter_id ON invitations (inviter_id, created_at)',
    ],
  },
  {
    version: 3,
    name: 'list indexes that match the list order',
    // Lists sort newest first with the id as tie-breaker; indexes holding both serve a page without a sort.
    statements: () => [
      'DROP INDEX users_created_at',
      'CREATE INDEX users_created_at ON users (created_at, user_id)',
      'DROP INDEX rooms_created_at',
      'CREATE INDEX rooms_created_at ON rooms (created_at, room_id)',
      'DROP INDEX invitations_receiver_id',
      'CREATE INDEX invitations_receiver_id ON invitations (receiver_id, created_at, invite_id)',
      'DROP INDEX invitations_inviter_id',
      'CREATE INDEX invitations_inviter_id ON invitations (inviter_id, created_at, invite_id)',
    ],
  },
  {
    version: 4,
    name: 'user counts kept by triggers',
    // An exact total for GET /users without counting every user on every page.
    statements: ({ boolean }, dialect) => [
      `CREATE TABLE user_counts (
        user_role TEXT NOT NULL,
        is_active ${boolean} NOT NULL,
        total INTEGER NOT NULL,
        PRIMARY KEY (user_role, is_active)
      )`,
      'INSERT INTO user_counts (user_role, is_active, total) SELECT user_role, is_active, count(*) FROM users GROUP BY user_role, is_active',
      ...USER_COUNT_TRIGGERS[dialect],
    ],
  },
  {
    version: 5,
    name: 'sessions by expiry',
    // The purge finds ended sessions, and the sessions_active gauge live ones, without reading them all.
    statements: () => ['CREATE INDEX sessions_expires_at ON sessions (expires_at)'],
  },
  {
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
  },
  {
    version: 7,
    name: 'invitations by last change',
    // The purge finds invitations settled before INVITE_RETENTION without reading them all.
    statements: () => ['CREATE INDEX invitations_updated_at ON invitations (updated_at)'],
  },
  {
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
  },
  {
    version: 9,
    name: 'room chat',
    // A message's number is its event's in the room's chat stream: history pages by it, with no ties.
    statements: () => [
      `CREATE TABLE messages (
        message_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        author_id TEXT REFERENCES users(user_id) ON DELETE SET NULL,
        client_id TEXT,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        edited_at TEXT,
        deleted_at TEXT,
        UNIQUE (room_id, seq),
        UNIQUE (room_id, author_id, client_id)
      )`,
      'CREATE INDEX messages_created_at ON messages (created_at)',
    ],
  },
  {
    version: 10,
    name: 'presence',
    // A row per user and instance with sockets open; an instance renews its rows, and rows it stops renewing (it died) go stale.
    statements: () => [
      `CREATE TABLE presence (
        user_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        PRIMARY KEY (user_id, instance_id)
      )`,
      'CREATE INDEX presence_seen_at ON presence (seen_at)',
    ],
  },
  {
    version: 11,
    name: 'direct messages and blocks',
    // A conversation is a pair of users (user_a < user_b); its counter numbers its messages.
    statements: () => [
      `CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        user_a TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        user_b TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        last_seq INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (user_a, user_b)
      )`,
      'CREATE INDEX conversations_user_b ON conversations (user_b)',
      `CREATE TABLE direct_messages (
        message_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        author_id TEXT REFERENCES users (user_id) ON DELETE SET NULL,
        client_id TEXT,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (conversation_id, seq),
        UNIQUE (conversation_id, author_id, client_id)
      )`,
      'CREATE INDEX direct_messages_created_at ON direct_messages (created_at)',
      `CREATE TABLE read_markers (
        conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        last_read_seq INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, user_id)
      )`,
      `CREATE TABLE blocks (
        blocker_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        blocked_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        PRIMARY KEY (blocker_id, blocked_id)
      )`,
    ],
  },
  {
    version: 12,
    name: 'the edits of each message',
    // A deletion blanks the text of a message's events by their keys, instead of scanning the chat stream's log for them.
    statements: (_, dialect) => {
      const messageId = dialect === 'postgres' ? "payload::json->>'message_id'" : "json_extract(payload, '$.message_id')"
      return [
        `CREATE TABLE message_edits (
          message_id TEXT NOT NULL REFERENCES messages (message_id) ON DELETE CASCADE,
          seq INTEGER NOT NULL,
          PRIMARY KEY (message_id, seq)
        )`,
        `INSERT INTO message_edits (message_id, seq)
         SELECT ${messageId}, seq FROM events WHERE type = 'message_edited' AND ${messageId} IN (SELECT message_id FROM messages)`,
      ]
    },
  },
  {
    version: 13,
    name: 'indexes for deleting a user and reaping presence',
    // Deleting a user finds what they wrote, blocked and read by index; a renewal finds its instance's rows.
    statements: () => [
      'CREATE INDEX messages_author_id ON messages (author_id)',
      'CREATE INDEX direct_messages_author_id ON direct_messages (author_id)',
      'CREATE INDEX blocks_blocked_id ON blocks (blocked_id)',
      'CREATE INDEX read_markers_user_id ON read_markers (user_id)',
      'CREATE INDEX presence_instance_id ON presence (instance_id)',
    ],
  },
  {
    version: 14,
    name: 'open seats by user',
    // A user's open rooms are found (and counted) among their seats by index, however many closed rooms they sat in.
    statements: ({ boolean }) => [
      `ALTER TABLE room_players ADD COLUMN room_closed ${boolean} NOT NULL DEFAULT ${boolean === 'BOOLEAN' ? 'false' : '0'}`,
      'UPDATE room_players SET room_closed = (SELECT is_closed FROM rooms WHERE rooms.room_id = room_players.room_id)',
      'CREATE INDEX room_players_open ON room_players (user_id, room_closed, room_id)',
    ],
  },
]

/** Every version of the schema, in order. */
export const SCHEMA_VERSIONS = MIGRATIONS.map((migration) => migration.version)

/** Applies every migration the store has not seen yet, once, even with several instances starting at once. */
export async function migrate(db: Database): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.lock('schema_migrations')
    await tx.run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    )
    const rows = await tx.all<{ version: number }>('SELECT version FROM schema_migrations')
    const applied = new Set(rows.map((row) => row.version))
    const pending = MIGRATIONS.filter((migration) => !applied.has(migration.version))
    for (const migration of pending) {
      for (const statement of migration.statements(COLUMN_TYPES[db.dialect], db.dialect)) await tx.run(statement)
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        new Date().toISOString(),
      ])
    }
    return pending.map((migration) => migration.version)
  })
}
