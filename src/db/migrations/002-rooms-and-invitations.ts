import type { Migration } from './migration'

export default {
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
} satisfies Migration
