import type { Migration } from './migration'

export default {
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
} satisfies Migration
