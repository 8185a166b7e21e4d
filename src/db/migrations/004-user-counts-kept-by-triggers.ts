import type { Dialect } from '../database'
import type { Migration } from './migration'

/**
 * Triggers that keep `user_counts` equal to `SELECT user_role, is_active, count(*) FROM users GROUP BY 1, 2`
 * in the same transaction as the change. A role or status change moves one user between two rows;
 * PostgreSQL takes those two row locks in key order, so two opposite moves cannot deadlock.
 */
const USER_COUNT_TRIGGERS: Record<Dialect, string[]> = {
  sqlite: [
    `CREATE TRIGGER users_counted_on_insert AFTER INSERT ON users BEGIN
      INSERT INTO user_counts (user_role, is_active, total) VALUES (NEW.user_role, NEW.is_active, 1)
        ON CONFLICT (user_role, is_active) DO UPDATE SET total = total + 1;
    END`,
    `CREATE TRIGGER users_counted_on_delete AFTER DELETE ON users BEGIN
      UPDATE user_counts SET total = total - 1 WHERE user_role = OLD.user_role AND is_active = OLD.is_active;
    END`,
    `CREATE TRIGGER users_counted_on_update AFTER UPDATE OF user_role, is_active ON users
      WHEN OLD.user_role <> NEW.user_role OR OLD.is_active <> NEW.is_active BEGIN
      UPDATE user_counts SET total = total - 1 WHERE user_role = OLD.user_role AND is_active = OLD.is_active;
      INSERT INTO user_counts (user_role, is_active, total) VALUES (NEW.user_role, NEW.is_active, 1)
        ON CONFLICT (user_role, is_active) DO UPDATE SET total = total + 1;
    END`,
  ],
  postgres: [
    `CREATE FUNCTION user_counts_add(role TEXT, active BOOLEAN, delta INTEGER) RETURNS void LANGUAGE sql AS $$
      INSERT INTO user_counts (user_role, is_active, total) VALUES (role, active, delta)
        ON CONFLICT (user_role, is_active) DO UPDATE SET total = user_counts.total + delta
    $$`,
    `CREATE FUNCTION users_counted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, 1);
      ELSIF TG_OP = 'DELETE' THEN
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, -1);
      ELSIF (OLD.user_role, OLD.is_active) < (NEW.user_role, NEW.is_active) THEN
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, -1);
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, 1);
      ELSIF (OLD.user_role, OLD.is_active) > (NEW.user_role, NEW.is_active) THEN
        PERFORM user_counts_add(NEW.user_role, NEW.is_active, 1);
        PERFORM user_counts_add(OLD.user_role, OLD.is_active, -1);
      END IF;
      RETURN NULL;
    END
    $$`,
    'CREATE TRIGGER users_counted AFTER INSERT OR DELETE OR UPDATE OF user_role, is_active ON users FOR EACH ROW EXECUTE FUNCTION users_counted()',
  ],
}

export default {
  version: 4,
  name: 'user counts kept by triggers',
  // An exact total for GET /users without counting every user on every page.
  statements: ({ boolean }, dialect) => [
    `CREATE TABLE user_counts (
      user_role TEXT NOT NULL,
      is_active ${boolean} NOT NULL,
      total INTEGER NOT NULL,
      PRIMARY KEY (user_role, is_active)
    )`,
    'INSERT INTO user_counts (user_role, is_active, total) SELECT user_role, is_active, count(*) FROM users GROUP BY user_role, is_active',
    ...USER_COUNT_TRIGGERS[dialect],
  ],
} satisfies Migration
