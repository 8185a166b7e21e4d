import type { Queryable } from '../../db/database'

/** Where a stored object stands: being uploaded (one per user at a time), the user's avatar, or garbage (being removed). */
export type ObjectState = 'uploading' | 'current' | 'garbage' | 'removing'

export interface AvatarObject {
  object_key: string
  user_id: string
  state: ObjectState
  changed_at: string
}

/** The avatar objects and their states: what is in the storage, and why. */
export class AvatarStore {
  async find(key: string, q: Queryable): Promise<AvatarObject | undefined> {
    return q.get<AvatarObject>('SELECT object_key, user_id, state, changed_at FROM avatar_objects WHERE object_key = $1', [key])
  }

  /** The user's object in `state` (at most one is uploading, at most one is current). */
  async findOf(userId: string, state: 'uploading' | 'current', q: Queryable): Promise<AvatarObject | undefined> {
    return q.get<AvatarObject>('SELECT object_key, user_id, state, changed_at FROM avatar_objects WHERE user_id = $1 AND state = $2', [userId, state])
  }

  /** Records an upload of `key` as begun. */
  async claim(key: string, userId: string, now: string, q: Queryable): Promise<void> {
    await q.run("INSERT INTO avatar_objects (object_key, user_id, state, changed_at) VALUES ($1, $2, 'uploading', $3)", [key, userId, now])
  }

  /** Records `key` as garbage, whatever became of its record, unless it is an avatar. */
  async discard(key: string, userId: string, now: string, q: Queryable): Promise<void> {
    await q.run(
      `INSERT INTO avatar_objects (object_key, user_id, state, changed_at) VALUES ($1, $2, 'garbage', $3)
       ON CONFLICT (object_key) DO UPDATE SET state = 'garbage', changed_at = $3 WHERE avatar_objects.state <> 'current'`,
      [key, userId, now],
    )
  }

  async setState(key: string, state: ObjectState, now: string, q: Queryable): Promise<void> {
    await q.run('UPDATE avatar_objects SET state = $2, changed_at = $3 WHERE object_key = $1', [key, state, now])
  }

  /** Every object of the user becomes garbage (their account is being erased); answers their keys. */
  async discardAllOf(userId: string, now: string, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ object_key: string }>(
      "UPDATE avatar_objects SET state = 'garbage', changed_at = $2 WHERE user_id = $1 AND state IN ('uploading', 'current') RETURNING object_key",
      [userId, now],
    )
    return rows.map((row) => row.object_key)
  }

  /** Marks garbage as being removed (or again, after a removal that failed or was cut short); false when it is not garbage. */
  async markRemoving(key: string, now: string, q: Queryable): Promise<boolean> {
    return (await q.run("UPDATE avatar_objects SET state = 'removing', changed_at = $2 WHERE object_key = $1 AND state IN ('garbage', 'removing')", [key, now])) > 0
  }

  /** Forgets an object once it has been removed from the storage. */
  async forget(key: string, q: Queryable): Promise<void> {
    await q.run("DELETE FROM avatar_objects WHERE object_key = $1 AND state = 'removing'", [key])
  }

  /** Uploads begun before `before` that never finished: their instance stopped, or their storage call never returned. */
  async staleUploads(before: string, limit: number, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ object_key: string }>(
      "SELECT object_key FROM avatar_objects WHERE state = 'uploading' AND changed_at < $1 ORDER BY changed_at LIMIT $2",
      [before, limit],
    )
    return rows.map((row) => row.object_key)
  }

  /** Garbage left since before `before`: a removal that failed or was cut short. */
  async leftOver(before: string, limit: number, q: Queryable): Promise<string[]> {
    const rows = await q.all<{ object_key: string }>(
      "SELECT object_key FROM avatar_objects WHERE state IN ('garbage', 'removing') AND changed_at < $1 ORDER BY changed_at LIMIT $2",
      [before, limit],
    )
    return rows.map((row) => row.object_key)
  }
}
