import type { Migration } from './migration'

export default {
  version: 7,
  name: 'invitations by last change',
  // The purge finds invitations settled before INVITE_RETENTION without reading them all.
  statements: () => ['CREATE INDEX invitations_updated_at ON invitations (updated_at)'],
} satisfies Migration
