import type { Dialect } from '../database'
import type { Migration } from './migration'

/**
 * A deleted account keeps its row (its name and address stay reserved) until it is erased:
 * `deleted_at` says since when. `user_counts` gains the deleted flag, so that a list without
 * deleted users still counts from it; its triggers are those of migration 4 with a third key.
 */
const MIGRATION_4_TRIGGERS: Record<Dialect, string[]> = {
  sqlite: ['DROP TRIGGER users_counted_on_insert', 'DROP TRIGGER users_counted_on_delete', 'DROP TRIGGER users_counted_on_update'],
  postgres: ['DROP TRIGGER users_counted ON users', 'DROP FUNCTION users_counted()', 'DROP FUNCTION user_counts_add(TEXT, BOOLEAN, INTEGER)'],
}

const COUNTS: Record<Dialect, string[]> = {
  sqlite: [
    `CREATE TRIGGER users_counted_on_insert AFTER INSERT ON users BEGIN
      INSERT INTO user_counts (user_role, is_active, is_deleted, total) VALUES (NEW.user_role, NEW.is_active, NEW.deleted_at IS NOT NULL, 1)
        ON CONFLICT (user_role, is_active, is_deleted) DO UPDATE SET total = total + 1;
    END`,
    `CREATE TRIGGER users_counted_on_delete AFTER DELETE ON users BEGIN
      UPDATE user_counts SET total = total - 1
       WHERE user_role = OLD.user_role AND is_active = OLD.is_active AND is_deleted = (OLD.deleted_at IS NOT NULL);
    END`,
    `CREATE TRIGGER users_counted_on_update AFTER UPDATE OF user_role, is_active, deleted_at ON users
      WHEN OLD.user_role <> NEW.user_role OR OLD.is_active <> NEW.is_active OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) BEGIN
      UPDATE user_counts SET total = total - 1
       WHERE user_role = OLD.user_role AND is_active = OLD.is_active AND is_deleted = (OLD.deleted_at IS NOT NULL);
      INSERT INTO user_counts (user_role, is_active, is_deleted, total) VALUES (NEW.user_role, NEW.is_active, NEW.deleted_at IS NOT NULL, 1)
        ON CONFLICT (user_role, is_active, is_deleted) DO UPDATE SET total = total + 1;
    END`,
  ],
  postgres: [
    `CREATE FUNCTION user_counts_add(role TEXT, active BOOLEAN, deleted BOOLEAN, delta INTEGER) RETURNS void LANGUAGE sql AS $$
      INSERT INTO user_counts (user_role, is_active, is_deleted, total) VALUES (role, active, deleted, delta)
        ON CONFLICT (user_role, is_active, is_deleted) DO UPDATE SET total = user_counts.total + delta
    $$`,
    // Two opposite moves take their two row locks in key order, so they cannot deadlock.
    `CREATE FUNCTION users_counted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, NEW.deleted_at IS NOT NULL, 1);
      ELSIF TG_OP = 'DELETE' THEN
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, OLD.deleted_at IS NOT NULL, -1);
      ELSIF (OLD.user_role, OLD.is_active, OLD.deleted_at IS NOT NULL) < (NEW.user_role, NEW.is_active, NEW.deleted_at IS NOT NULL) THEN
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, OLD.deleted_at IS NOT NULL, -1);
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, NEW.deleted_at IS NOT NULL, 1);
      ELSIF (OLD.user_role, OLD.is_active, OLD.deleted_at IS NOT NULL) > (NEW.user_role, NEW.is_active, NEW.deleted_at IS NOT NULL) THEN
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, NEW.deleted_at IS NOT NULL, 1);
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, OLD.deleted_at IS NOT NULL, -1);
      END IF;
      RETURN NULL;
    END
    $$`,
    'CREATE TRIGGER users_counted AFTER INSERT OR DELETE OR UPDATE OF user_role, is_active, deleted_at ON users FOR EACH ROW EXECUTE FUNCTION users_counted()',
  ],
}

export default {
  version: 17,
  name: 'soft deletion',
  statements: ({ boolean }, dialect) => [
    'ALTER TABLE users ADD COLUMN deleted_at TEXT',
    // The purge finds accounts deleted long enough ago by index, among any number of live ones.
    'CREATE INDEX users_deleted ON users (deleted_at) WHERE deleted_at IS NOT NULL',
    ...MIGRATION_4_TRIGGERS[dialect],
    'DROP TABLE user_counts',
    `CREATE TABLE user_counts (
      user_role TEXT NOT NULL,
      is_active ${boolean} NOT NULL,
      is_deleted ${boolean} NOT NULL,
      total INTEGER NOT NULL,
      PRIMARY KEY (user_role, is_active, is_deleted)
    )`,
    'INSERT INTO user_counts (user_role, is_active, is_deleted, total) SELECT user_role, is_active, deleted_at IS NOT NULL, count(*) FROM users GROUP BY 1, 2, 3',
    ...COUNTS[dialect],
  ],
} satisfies Migration
