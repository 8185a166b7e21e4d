import type { Database, SqlValue } from '../src/db/database'
import { migrate } from '../src/db/migrations'
import { randomToken, sha256 } from '../src/lib/crypto'

export const BENCH_PASSWORD = 'bench-password'

export interface Seeded {
  refreshTokens: string[]
}

/**
 * Realistic data written straight into the store: 10,000 users, 2,000 rooms with players,
 * invitations, and `bench_user` in exactly 5 rooms with 10 invitations received. Every user shares
 * one argon2id hash made with the production cost (hashing 10,000 passwords would take minutes and
 * change nothing about lookups). Refresh tokens are made up front because each refresh spends one.
 */
export async function seed(db: Database, refreshTokenCount: number): Promise<Seeded> {
  await migrate(db)
  const hash = await Bun.password.hash(BENCH_PASSWORD, { algorithm: 'argon2id', memoryCost: 65_536, timeCost: 2 })
  const base = Date.parse('2026-01-01T00:00:00.000Z')
  const at = (offset: number) => new Date(base + offset * 1000).toISOString()
  const users = Array.from({ length: 10_000 }, (_, i) => ({
    user_id: Bun.randomUUIDv7(),
    username: i === 0 ? 'bench_admin' : i === 1 ? 'bench_user' : `player_${i}`,
    role: i === 0 ? 'admin' : 'user',
    created_at: at(i),
  }))
  await insertMany(
    db,
    'users (user_id, username, password_hash, user_role, is_active, created_at, updated_at)',
    users.map((user) => [user.user_id, user.username, hash, user.role, true, user.created_at, user.created_at]),
  )

  const benchUser = users[1]!
  const rooms: SqlValue[][] = []
  const players: SqlValue[][] = []
  const invitations: SqlValue[][] = []
  for (let r = 0; r < 2000; r++) {
    const roomId = Bun.randomUUIDv7()
    const maxPlayers = 2 + (r % 7)
    const seated = new Set<number>([2 + ((r * 7919) % 9998)])
    if (r < 5) seated.add(1) // bench_user plays in exactly five rooms
    while (seated.size < Math.min(maxPlayers, 1 + (r % 5))) seated.add(2 + ((r * 104_729 + seated.size * 7) % 9998))
    const owner = users[[...seated][0]!]!
    rooms.push([roomId, `Room ${r}`, owner.user_id, maxPlayers, r % 10 === 0, at(20_000 + r), at(20_000 + r)])
    for (const index of seated) players.push([roomId, users[index]!.user_id, index === 1 ? 'operator' : 'crew', at(20_000 + r)])
    const receiver = r < 10 ? benchUser : users[2 + ((r * 31) % 9998)]!
    if (!seated.has(users.indexOf(receiver)))
      invitations.push([
        Bun.randomUUIDv7(),
        roomId,
        owner.user_id,
        receiver.user_id,
        'observer',
        'pending',
        randomToken(24),
        at(30_000 + r),
        at(30_000 + r),
        '2099-01-01T00:00:00.000Z',
      ])
  }
  await insertMany(db, 'rooms (room_id, room_name, owner_id, max_players, is_closed, created_at, updated_at)', rooms)
  await insertMany(db, 'room_players (room_id, user_id, game_role, joined_at)', players)
  await insertMany(db, 'invitations (invite_id, room_id, inviter_id, receiver_id, player_role, status, ct, created_at, updated_at, expires_at)', invitations)

  // Sessions of the players, a few each (a user holds at most MAX_SESSIONS_PER_USER), opened a day
  // ago: within SESSION_MAX_LIFETIME, so every one of them can be refreshed.
  const refreshTokens = Array.from({ length: refreshTokenCount }, () => randomToken(32))
  const sessions = refreshTokens.map(() => Bun.randomUUIDv7())
  const openedAt = new Date(Date.now() - 86_400_000).toISOString()
  await insertMany(
    db,
    'sessions (session_id, user_id, created_at, expires_at)',
    sessions.map((sessionId, i) => [sessionId, users[2 + (i % 9998)]!.user_id, openedAt, '2099-01-01T00:00:00.000Z']),
  )
  await insertMany(
    db,
    'refresh_tokens (token_hash, session_id, issued_at, expires_at)',
    refreshTokens.map((token, i) => [sha256(token), sessions[i]!, openedAt, '2099-01-01T00:00:00.000Z']),
  )
  // Planner statistics, as a database in service would have them (autovacuum, or SQLite's optimize).
  await db.run('ANALYZE')
  return { refreshTokens }
}

export async function insertMany(db: Database, target: string, rows: SqlValue[][], batch = 500): Promise<void> {
  const width = rows[0]?.length ?? 0
  await db.transaction(async (tx) => {
    for (let start = 0; start < rows.length; start += batch) {
      const chunk = rows.slice(start, start + batch)
      const values = chunk.map((_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ')
      await tx.run(`INSERT INTO ${target} VALUES ${values}`, chunk.flat())
    }
  })
}
