import { SQL } from 'bun'
import { type Database, runAfterCommit, runBeforeCommit, type SessionLock, type SqlValue, type Transaction, UniqueViolation } from './database'

type Runner = Pick<SQL, 'unsafe'>

/** SQLSTATEs of a transaction aborted for another's sake: deadlock_detected, serialization_failure. */
const RETRYABLE = new Set(['40P01', '40001'])
const TRANSACTION_ATTEMPTS = 3
/** The first key of every session lock (the second names it): 'sim-gateway' in ASCII, for whoever reads pg_locks. */
const SESSION_LOCKS = 0x73696d67
/** How long taking or checking a session lock may take before its connection counts as lost. */
const SESSION_LOCK_TIMEOUT_MS = 5000

/** PostgreSQL through Bun.SQL's connection pool; statements are sent as parameterised queries. */
export class PostgresDatabase implements Database {
  readonly dialect = 'postgres'
  /** Every query of the pool runs off the event loop already. */
  readonly reader: Database = this

  private constructor(
    private readonly sql: SQL,
    private readonly url: string,
  ) {}

  static async connect(url: string, poolSize: number): Promise<PostgresDatabase> {
    const database = new PostgresDatabase(new SQL(url, { max: poolSize, idleTimeout: 30, connectionTimeout: 10 }), url)
    await database.ping()
    return database
  }

  all<Row>(sql: string, params: SqlValue[] = []): Promise<Row[]> {
    return query<Row>(this.sql, sql, params)
  }

  async get<Row>(sql: string, params: SqlValue[] = []): Promise<Row | undefined> {
    return (await query<Row>(this.sql, sql, params))[0]
  }

  run(sql: string, params: SqlValue[] = []): Promise<number> {
    return count(this.sql, sql, params)
  }

  /**
   * Runs `work` in a transaction. One that PostgreSQL aborted for another's sake (a deadlock, or a
   * serialization failure) is run again from the start, up to three times in all: two transactions
   * that lock the same rows in different orders then both complete.
   */
  async transaction<Result>(work: (tx: Transaction) => Promise<Result>): Promise<Result> {
    for (let attempt = 1; ; attempt++) {
      const finishing: Array<() => Promise<void>> = []
      const committed: Array<() => void> = []
      try {
        const result = await this.sql.begin(async (connection) => {
          const tx: Transaction = {
            all: <Row>(sql: string, params: SqlValue[] = []) => query<Row>(connection, sql, params),
            get: async <Row>(sql: string, params: SqlValue[] = []) => (await query<Row>(connection, sql, params))[0],
            run: (sql, params = []) => count(connection, sql, params),
            lock: async (...keys) => {
              if (keys.length === 1) await query(connection, 'SELECT pg_advisory_xact_lock(hashtext($1))', keys)
              // By the locks' own numbers: two transactions taking overlapping sets never wait for each other in a circle.
              else if (keys.length > 1)
                await query(
                  connection,
                  `SELECT pg_advisory_xact_lock(id) FROM (SELECT DISTINCT hashtext(key) AS id FROM (VALUES ${keys.map((_, index) => `($${index + 1})`).join(', ')}) AS keys (key) ORDER BY id) AS ids`,
                  keys,
                )
            },
            beforeCommit: (callback) => finishing.push(callback),
            afterCommit: (callback) => committed.push(callback),
          }
          const done = await work(tx)
          await runBeforeCommit(finishing)
          return done
        })
        runAfterCommit(committed)
        return result as Result
      } catch (error) {
        if (attempt >= TRANSACTION_ATTEMPTS || !RETRYABLE.has(String((error as { errno?: unknown }).errno))) throw error
        await Bun.sleep(Math.random() * 10 * attempt)
      }
    }
  }

  async listen(channel: string, onNotify: (payload: string) => void, onListen: () => void): Promise<() => Promise<void>> {
    const subscription = await this.sql.listen(channel, onNotify, onListen)
    return () => subscription.unlisten()
  }

  sessionLock(key: string): SessionLock {
    // Outside the pool: a pooled connection goes idle and is closed, and the lock would go with it.
    const open = () => new SQL(this.url, { max: 1, idleTimeout: 0, maxLifetime: 0, connectionTimeout: 10 })
    let connection = open()
    return {
      hold: async () => {
        const asked = query<{ held: boolean }>(
          connection,
          // Its keepalives let PostgreSQL notice within half a minute a holder whose machine vanished,
          // and let the lock go. The two-key form never meets the one-key transaction locks (hashtext of a key).
          `SELECT set_config('tcp_keepalives_idle', '10', false), set_config('tcp_keepalives_interval', '5', false),
                  set_config('tcp_keepalives_count', '3', false), pg_try_advisory_lock($1, hashtext($2)) AS held`,
          [SESSION_LOCKS, key],
        )
        const answer = await Promise.race([asked, Bun.sleep(SESSION_LOCK_TIMEOUT_MS).then(() => undefined)]).catch(() => undefined)
        if (answer) return Boolean(answer[0]?.held)
        // No answer: the connection (and any lock it held) is as good as gone; the next call starts another.
        asked.catch(() => {})
        void connection.close({ timeout: 0 }).catch(() => {})
        connection = open()
        return false
      },
      release: () => connection.close({ timeout: 1 }),
    }
  }

  async ping(): Promise<void> {
    await this.sql.unsafe('SELECT 1')
  }

  async close(): Promise<void> {
    await this.sql.close({ timeout: 5 })
  }
}

async function query<Row>(runner: Runner, sql: string, params: SqlValue[]): Promise<Row[]> {
  return guard(() => runner.unsafe(sql, params) as Promise<Row[]>)
}

async function count(runner: Runner, sql: string, params: SqlValue[]): Promise<number> {
  const result = await guard(() => runner.unsafe(sql, params) as Promise<{ count: number }>)
  return result.count
}

async function guard<Value>(statement: () => Promise<Value>): Promise<Value> {
  try {
    return await statement()
  } catch (error) {
    if ((error as { errno?: unknown }).errno === '23505') throw new UniqueViolation(error)
    throw error
  }
}
