import type { Migration } from './migration'

export default {
  version: 21,
  name: 'avatars',
  // Each stored object and where it stands: being uploaded (one at a time per user), the user's
  // avatar, or garbage being removed. Rows outlive their user until the object is gone.
  statements: () => [
    'ALTER TABLE users ADD COLUMN avatar_url TEXT',
    `CREATE TABLE avatar_objects (
      object_key TEXT PRIMARY KEY,
      user_id TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('uploading', 'current', 'garbage', 'removing')),
      changed_at TEXT NOT NULL
    )`,
    "CREATE UNIQUE INDEX avatar_objects_one_upload_per_user ON avatar_objects (user_id) WHERE state = 'uploading'",
    'CREATE INDEX avatar_objects_by_user ON avatar_objects (user_id)',
    'CREATE INDEX avatar_objects_by_state ON avatar_objects (state, changed_at)',
  ],
} satisfies Migration
