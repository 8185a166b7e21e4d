import type { Dialect } from '../database'

/**
 * A change to the schema, one file each, named by its version: `statements` for the store's
 * dialect, run once, in order, inside one transaction with the others pending.
 */
export interface Migration {
  version: number
  name: string
  statements: (types: ColumnTypes, dialect: Dialect) => string[]
}

export interface ColumnTypes {
  boolean: string
}
