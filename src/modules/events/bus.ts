import type { StoredEvent } from './model'

/**
 * Committed events, handed to the listeners of their stream in this process. The event log stays
 * the source of truth: a listener that sees a gap in the numbers reads the missing ones from it.
 */
export class EventBus {
  readonly #listeners = new Map<string, Set<(event: StoredEvent) => void>>()

  /** Listens to a stream; answers the function that stops listening. */
  listen(stream: string, listener: (event: StoredEvent) => void): () => void {
    let listeners = this.#listeners.get(stream)
    if (!listeners) this.#listeners.set(stream, (listeners = new Set()))
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0) this.#listeners.delete(stream)
    }
  }

  publish(event: StoredEvent): void {
    for (const listener of this.#listeners.get(event.stream) ?? []) listener(event)
  }
}
