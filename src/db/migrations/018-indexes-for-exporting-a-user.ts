import type { Migration } from './migration'

export default {
  version: 18,
  name: 'indexes for exporting a user',
  // An export walks a user's seats and room messages in key order, a page at a time, by index; the
  // two indexes they replace found a user's rows by user alone, which these do as well.
  statements: () => [
    'CREATE INDEX room_players_by_user ON room_players (user_id, room_id)',
    'DROP INDEX room_players_user_id',
    'CREATE INDEX messages_by_author ON messages (author_id, message_id)',
    'DROP INDEX messages_author_id',
  ],
} satisfies Migration
