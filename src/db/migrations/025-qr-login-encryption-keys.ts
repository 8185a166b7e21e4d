import type { Migration } from './migration'

export default {
  version: 25,
  name: 'qr login encryption keys',
  // The desktop's ECDH public key, which its tokens are sealed to (credentials/sealed.ts). A request
  // started before has none: its exchange answers expired_token, and the desktop starts again.
  statements: () => ['ALTER TABLE login_requests ADD COLUMN encryption_key TEXT'],
} satisfies Migration
