import { Database as SqliteConnection, type SQLQueryBindings } from 'bun:sqlite'
import readerScript from './sqlite-reader.js' with { type: 'file' }
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { type Database, type Queryable, runAfterCommit, runBeforeCommit, type SessionLock, type SqlValue, type Transaction, UniqueViolation } from './database'

/**
 * Embedded SQLite through bun:sqlite. One connection serves the process; because its calls are
 * synchronous, a transaction that awaits between statements holds the connection's lock, and every
 * other caller queues for it, so no statement ever lands inside someone else's transaction. The lock
 * is taken in the same step that finds it free, and handed straight to the next in line on release.
 */
const BUSY_TIMEOUT_MS = 5000

export class SqliteDatabase implements Database {
  readonly dialect = 'sqlite'
  readonly reader: Queryable
  #locked = false
  readonly #waiting: Array<() => void> = []

  private constructor(
    private readonly connection: SqliteConnection,
    reader?: SqliteReader,
  ) {
    this.reader = reader ?? this
  }

  static async open(path: string): Promise<SqliteDatabase> {
    if (path !== ':memory:') keepPrivate(path)
    const connection = new SqliteConnection(path, { create: true, strict: true })
    connection.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`)
    enableWal(connection)
    // FULL: an acknowledged write survives power loss, not only a killed process.
    connection.run('PRAGMA synchronous = FULL')
    connection.run('PRAGMA foreign_keys = ON')
    // An in-memory database is this connection's alone: its reads stay here.
    return new SqliteDatabase(connection, path === ':memory:' ? undefined : await SqliteReader.open(path))
  }

  all<Row>(sql: string, params: SqlValue[] = []): Promise<Row[]> {
    return this.#exclusive(() => this.#all<Row>(sql, params))
  }

  async get<Row>(sql: string, params: SqlValue[] = []): Promise<Row | undefined> {
    return (await this.#exclusive(() => this.#all<Row>(sql, params)))[0]
  }

  run(sql: string, params: SqlValue[] = []): Promise<number> {
    return this.#exclusive(() => this.#run(sql, params))
  }

  async transaction<Result>(work: (tx: Transaction) => Promise<Result>): Promise<Result> {
    await this.#lock()
    const finishing: Array<() => Promise<void>> = []
    const committed: Array<() => void> = []
    const tx: Transaction = {
      all: async <Row>(sql: string, params: SqlValue[] = []) => this.#all<Row>(sql, params),
      get: async <Row>(sql: string, params: SqlValue[] = []) => this.#all<Row>(sql, params)[0],
      run: async (sql: string, params: SqlValue[] = []) => this.#run(sql, params),
      lock: async () => {},
      beforeCommit: (callback) => finishing.push(callback),
      afterCommit: (callback) => committed.push(callback),
    }
    try {
      this.connection.run('BEGIN IMMEDIATE')
      const result = await work(tx)
      await runBeforeCommit(finishing)
      this.connection.run('COMMIT')
      runAfterCommit(committed)
      return result
    } catch (error) {
      if (this.connection.inTransaction) this.connection.run('ROLLBACK')
      throw error
    } finally {
      this.#unlock()
    }
  }

  /** One instance serves a SQLite file: it always holds the lock. */
  sessionLock(): SessionLock {
    return { hold: async () => true, release: async () => {} }
  }

  async ping(): Promise<void> {
    await this.get('SELECT 1')
  }

  /** Waits for the transactions under way, then closes; later calls fail at once (a closed database). */
  async close(): Promise<void> {
    await this.#lock()
    try {
      if (this.reader instanceof SqliteReader) this.reader.close()
      this.connection.close()
    } finally {
      this.#unlock()
    }
  }

  /** A single statement: at once when the connection is free, else after the transactions ahead of it. */
  async #exclusive<Value>(statement: () => Value): Promise<Value> {
    if (!this.#locked) return statement()
    await this.#lock()
    try {
      return statement()
    } finally {
      this.#unlock()
    }
  }

  #lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => this.#waiting.push(resolve))
  }

  #unlock(): void {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#locked = false
  }

  #all<Row>(sql: string, params: SqlValue[]): Row[] {
    return this.#guard(() => this.connection.query<Row, SQLQueryBindings[]>(native(sql)).all(...params))
  }

  #run(sql: string, params: SqlValue[]): number {
    return this.#guard(() => this.connection.query(native(sql)).run(...params).changes)
  }

  #guard<Value>(statement: () => Value): Value {
    try {
      return statement()
    } catch (error) {
      if (isUniqueViolation(error)) throw new UniqueViolation(error)
      throw error
    }
  }
}

const nativeSql = new Map<string, string>()

/** `$1` is a named parameter to SQLite; `?1` is the numbered form that binds positionally. */
function native(sql: string): string {
  let statement = nativeSql.get(sql)
  if (statement === undefined) {
    statement = sql.replace(/\$(\d+)/g, '?$1')
    nativeSql.set(sql, statement)
  }
  return statement
}

/**
 * The reads of a SQLite file whose cost grows with the data, on a thread of its own
 * (sqlite-reader.js) with a read-only connection: the event loop goes on while they run.
 */
class SqliteReader implements Queryable {
  readonly #worker = new Worker(readerScript)
  readonly #pending = new Map<number, { resolve: (rows: unknown[]) => void; reject: (error: Error) => void }>()
  #next = 0
  /** Why the thread can no longer answer, once it cannot. */
  #broken?: Error

  /** Starts the thread on `path`; resolves once its connection is open. */
  static open(path: string): Promise<SqliteReader> {
    const reader = new SqliteReader()
    return new Promise((resolve, reject) => {
      reader.#worker.onmessage = ({ data }: MessageEvent<{ ready?: true; error?: string }>) => {
        if (data.ready) {
          reader.#listen()
          resolve(reader)
        } else reject(new Error(`the SQLite reader thread could not open the database: ${data.error}`))
      }
      reader.#worker.onerror = (event) => reject(new Error(`the SQLite reader thread failed: ${event.message}`))
      reader.#worker.postMessage({ path, busyTimeout: BUSY_TIMEOUT_MS })
    })
  }

  all<Row>(sql: string, params: SqlValue[] = []): Promise<Row[]> {
    if (this.#broken) return Promise.reject(this.#broken)
    const id = this.#next++
    // Only a read under way keeps the process alive.
    if (this.#pending.size === 0) this.#worker.ref()
    return new Promise<Row[]>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (rows: unknown[]) => void, reject })
      this.#worker.postMessage({ id, sql: native(sql), params })
    }).finally(() => {
      if (this.#pending.size === 0) this.#worker.unref()
    })
  }

  async get<Row>(sql: string, params: SqlValue[] = []): Promise<Row | undefined> {
    return (await this.all<Row>(sql, params))[0]
  }

  run(): Promise<number> {
    return Promise.reject(new Error('the reader only reads'))
  }

  close(): void {
    this.#fail(new Error('the database is closed'))
    this.#worker.terminate()
  }

  #listen(): void {
    this.#worker.unref()
    this.#worker.onmessage = ({ data }: MessageEvent<{ id: number; rows?: string; error?: string }>) => {
      const pending = this.#pending.get(data.id)
      this.#pending.delete(data.id)
      if (data.error !== undefined) pending?.reject(new Error(data.error))
      else pending?.resolve(JSON.parse(data.rows ?? '[]'))
    }
    this.#worker.onerror = (event) => this.#fail(new Error(`the SQLite reader thread failed: ${event.message}`))
  }

  /** Every read under way, and every one after, is refused with `error`. */
  #fail(error: Error): void {
    this.#broken = error
    for (const { reject } of this.#pending.values()) reject(error)
    this.#pending.clear()
  }
}

/**
 * The file holds password hashes, invitation tokens and perhaps the generated JWT secret: only the
 * service's own user may read it. A folder the service creates is 0700; the file is made (or put
 * back to) 0600 before SQLite opens it, and SQLite gives its -wal and -shm files the same mode.
 */
function keepPrivate(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  closeSync(openSync(path, 'a', 0o600))
  chmodSync(path, 0o600)
}

/**
 * SQLite skips the busy handler when switching journal mode while another process is opening the
 * same new file (waiting could deadlock), so that one statement is retried here for a while.
 */
function enableWal(connection: SqliteConnection): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS
  for (;;) {
    try {
      connection.run('PRAGMA journal_mode = WAL')
      return
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error
      Bun.sleepSync(10)
    }
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}
