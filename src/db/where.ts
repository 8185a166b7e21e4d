import type { SqlValue } from './database'

/**
 * A WHERE clause built from optional filters: each `add` appends a condition joined by AND, its
 * `?` marks numbered as `$n` after the parameters already given.
 */
export class Where {
  readonly #conditions: string[] = []

  constructor(readonly params: SqlValue[] = []) {}

  add(condition: string, ...values: SqlValue[]): this {
    this.#conditions.push(condition.replace(/\?/g, () => `$${this.params.push(values.shift() as SqlValue)}`))
    return this
  }

  /** `WHERE a AND b`, or nothing without conditions. */
  toString(): string {
    return this.#conditions.length > 0 ? `WHERE ${this.#conditions.join(' AND ')}` : ''
  }
}
