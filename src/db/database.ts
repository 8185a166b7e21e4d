export type Dialect = 'sqlite' | 'postgres'

export type SqlValue = string | number | boolean | null

/**
 * The SQL surface every store uses. Statements are written once with `$1, $2...` placeholders and
 * portable SQL (ON CONFLICT, RETURNING, CAST(... AS INTEGER)); each driver runs them natively.
 */
export interface Queryable {
  all<Row>(sql: string, params?: SqlValue[]): Promise<Row[]>
  get<Row>(sql: string, params?: SqlValue[]): Promise<Row | undefined>
  /** Runs a statement and answers how many rows it changed. */
  run(sql: string, params?: SqlValue[]): Promise<number>
}

export interface Transaction extends Queryable {
  /**
   * Serialises transactions that name the same key, across processes (no-op where the whole store
   * is locked). Several keys are taken in one go, in an order every caller shares.
   */
  lock(...keys: string[]): Promise<void>
  /** Runs `callback` inside the transaction once its work is done, just before it commits: its last statements. */
  beforeCommit(callback: () => Promise<void>): void
  /** Runs `callback` once the transaction has committed (never when it rolls back). */
  afterCommit(callback: () => void): void
}

/** Runs the last statements of a transaction, in the order they were asked for (one may ask for more). */
export async function runBeforeCommit(callbacks: Array<() => Promise<void>>): Promise<void> {
  for (let index = 0; index < callbacks.length; index++) await callbacks[index]!()
}

/** Runs the callbacks a committed transaction collected; one that throws does not stop the others. */
export function runAfterCommit(callbacks: Array<() => void>): void {
  for (const callback of callbacks)
    try {
      callback()
    } catch (error) {
      queueMicrotask(() => {
        throw error
      })
    }
}

export interface Database extends Queryable {
  readonly dialect: Dialect
  /**
   * For reads whose cost grows with the data (a page of a list, its count): on a SQLite file, a
   * connection on a thread of its own, so that the event loop goes on meanwhile; elsewhere the
   * store itself. It sees what has committed.
   */
  readonly reader: Queryable
  /**
   * Runs `work` in one write transaction: committed when it resolves, rolled back when it throws.
   * Inside `work`, query through `tx` only: on SQLite, a call on the database itself waits for this
   * very transaction to end.
   */
  transaction<Result>(work: (tx: Transaction) => Promise<Result>): Promise<Result>
  ping(): Promise<void>
  close(): Promise<void>
  /**
   * PostgreSQL only: LISTENs on `channel` over a connection of its own, reconnected when it drops
   * (`onListen` runs after each LISTEN, the first included). Answers how to stop.
   */
  listen?(channel: string, onNotify: (payload: string) => void, onListen: () => void): Promise<() => Promise<void>>
  /**
   * A lock across instances, for work one of them does at a time. PostgreSQL holds it (an advisory
   * lock) on a connection of its own for as long as that connection lives, so a holder that dies
   * lets it go; a SQLite file has one instance, which always holds it.
   */
  sessionLock(key: string): SessionLock
}

export interface SessionLock {
  /**
   * Takes the lock, or checks it is still held: answers whether this instance holds it now. After
   * its connection dropped and came back, whoever asked first holds it.
   */
  hold(): Promise<boolean>
  release(): Promise<void>
}

/** A UNIQUE or PRIMARY KEY constraint refused a write; stores turn it into a domain conflict. */
export class UniqueViolation extends Error {
  constructor(cause: unknown) {
    super('unique constraint violated', { cause })
  }
}

export async function openDatabase(url: string, poolSize: number): Promise<Database> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PostgresDatabase } = await import('./postgres')
    return PostgresDatabase.connect(url, poolSize)
  }
  const { SqliteDatabase } = await import('./sqlite')
  return SqliteDatabase.open(sqlitePath(url))
}

function sqlitePath(url: string): string {
  if (url === '') return 'data/sim-gateway.sqlite'
  return url.replace(/^(sqlite|file):(\/\/)?/, '')
}
