import type { Migration } from './migration'

export default {
  version: 20,
  name: 'erasures under way',
  // An erasure, once begun, finishes: from then on the account cannot be restored half-erased.
  statements: () => ['ALTER TABLE users ADD COLUMN erasing_since TEXT'],
} satisfies Migration
