import { Elysia } from 'elysia'
import { clientAddress } from '../lib/client-address'
import { rateLimited } from '../shared/errors'

interface Limit {
  limit: number
  /** Seconds. */
  window: number
}

/**
 * `{ rateLimited: true }` on a route: a fixed-window limit per client address, checked before the
 * body is validated and before any password work. Counters live in this process; the login
 * brute-force counters, which must hold across instances, live in the store.
 */
export const rateLimit = ({ limit, window }: Limit, trustProxy: boolean) => {
  let counts = new Map<string, number>()
  let windowEnds = 0

  return new Elysia({ name: 'rate-limit' }).macro({
    rateLimited: {
      transform({ request, server }) {
        const now = Date.now()
        if (now >= windowEnds) {
          // Every address starts afresh together, so the map never outgrows one window's clients.
          counts = new Map()
          windowEnds = now + window * 1000
        }
        const address = clientAddress(request, server, trustProxy)
        const count = (counts.get(address) ?? 0) + 1
        counts.set(address, count)
        if (count > limit) {
          throw rateLimited('Too many requests; slow down', (windowEnds - now) / 1000)
        }
      },
    },
  })
}

/** One limit, used by every group of routes it covers: made once, so that they share its counters. */
export type RateLimit = ReturnType<typeof rateLimit>
