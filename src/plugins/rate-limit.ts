import { Elysia } from 'elysia'
import { clientAddress } from '../lib/client-address'
import { ApiError } from './errors'

interface RateLimit {
  limit: number
  /** Seconds. */
  window: number
}

/**
 * A fixed-window limit per client address on the given POST routes (registration, login, refresh):
 * cheap insurance against floods before any password work is done. Counters live in this process;
 * the login brute-force counters, which must hold across instances, live in the store.
 */
export const rateLimit = (paths: string[], { limit, window }: RateLimit, trustProxy: boolean) => {
  const limited = new Set(paths)
  let counts = new Map<string, number>()
  let windowEnds = 0

  return new Elysia({ name: 'rate-limit' }).onRequest(({ request, server }) => {
    if (request.method !== 'POST' || !limited.has(new URL(request.url).pathname)) return
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
      const retryAfter = String(Math.ceil((windowEnds - now) / 1000))
      throw new ApiError(429, 'rate_limited', 'Too many requests; slow down', undefined, { 'Retry-After': retryAfter })
    }
  })
}
