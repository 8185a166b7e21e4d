import type { Migration } from './migration'

export default {
  version: 14,
  name: 'open seats by user',
  // A user's open rooms are found (and counted) among their seats by index, however many closed rooms they sat in.
  statements: ({ boolean }) => [
    `ALTER TABLE room_players ADD COLUMN room_closed ${boolean} NOT NULL DEFAULT ${boolean === 'BOOLEAN' ? 'false' : '0'}`,
    'UPDATE room_players SET room_closed = (SELECT is_closed FROM rooms WHERE rooms.room_id = room_players.room_id)',
    'CREATE INDEX room_players_open ON room_players (user_id, room_closed, room_id)',
  ],
} satisfies Migration
