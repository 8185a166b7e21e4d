import type { Migration } from './migration'

export default {
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
} satisfies Migration
