import type { Tracer } from '../lib/tracing'
import type { Database, Queryable, SqlValue, Transaction } from './database'

/**
 * The store with a child span per statement and per transaction under the request that ran it
 * (used only when tracing is on). The statement text goes with it; its parameters never do.
 */
export function traced(db: Database, tracer: Tracer): Database {
  const system: [string, string] = ['db.system', db.dialect === 'postgres' ? 'postgresql' : 'sqlite']
  const statement = <Result>(sql: string, run: () => Promise<Result>) => tracer.child(spanName(sql), [system, ['db.query.text', sql]], run)
  const statements = (q: Queryable): Queryable => ({
    all: <Row>(sql: string, params?: SqlValue[]) => statement(sql, () => q.all<Row>(sql, params)),
    get: <Row>(sql: string, params?: SqlValue[]) => statement(sql, () => q.get<Row>(sql, params)),
    run: (sql: string, params?: SqlValue[]) => statement(sql, () => q.run(sql, params)),
  })
  return {
    ...statements(db),
    dialect: db.dialect,
    reader: statements(db.reader),
    transaction: <Result>(work: (tx: Transaction) => Promise<Result>) =>
      tracer.child('transaction', [system], () => db.transaction((tx) =>
          work({ ...statements(tx), lock: (...keys) => tx.lock(...keys), beforeCommit: (callback) => tx.beforeCommit(callback), afterCommit: (callback) => tx.afterCommit(callback) }),
        )),
    listen: db.listen?.bind(db),
    sessionLock: (key) => db.sessionLock(key),
    ping: () => db.ping(),
    close: () => db.close(),
  }
}

/** `SELECT users`, `UPDATE sessions`: the operation and the first table named, as OpenTelemetry names database spans. */
function spanName(sql: string): string {
  const operation = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? 'SQL'
  const table = /\b(?:FROM|INTO|UPDATE|JOIN)\s+(\w+)/i.exec(sql)?.[1]
  return table ? `${operation} ${table}` : operation
}
