import type { Migration } from './migration'

export default {
  version: 16,
  name: 'profiles',
  // email_key is the address in lower case, unique; search_text is what a search matches (the name, the
  // address and the names, lower-cased by the service so that both stores fold case alike, Unicode included).
  statements: () => [
    ...['display_name', 'firstname', 'lastname', 'middlename', 'email', 'email_key', 'phone', 'locale', 'time_zone'].map(
      (column) => `ALTER TABLE users ADD COLUMN ${column} TEXT`,
    ),
    "ALTER TABLE users ADD COLUMN search_text TEXT NOT NULL DEFAULT ''",
    // Usernames are ASCII, which lower() folds the same on both stores.
    'UPDATE users SET search_text = lower(username)',
    'CREATE UNIQUE INDEX users_email_key ON users (email_key)',
  ],
} satisfies Migration
