import { Elysia, t } from 'elysia'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../metrics'

const INCOMING_ID = /^[\w.:-]{1,128}$/

interface Started {
  id: string
  at: number
}

/**
 * Request ids (X-Request-Id kept from the caller when sane, made up otherwise, echoed on every
 * answer), one JSON log line and one metrics sample per request, and GET /metrics.
 * Log lines carry the route template, never the raw path or query, so ids and tokens stay out.
 */
export const observability = (log: Logger, metrics: Metrics, metricsEnabled: boolean) => {
  const started = new WeakMap<Request, Started>()

  const plugin = new Elysia({ name: 'observability' })
    .onRequest(({ request, set }) => {
      const incoming = request.headers.get('x-request-id')
      const id = incoming && INCOMING_ID.test(incoming) ? incoming : crypto.randomUUID()
      started.set(request, { id, at: performance.now() })
      set.headers['x-request-id'] = id
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, responseValue }) => {
      const start = started.get(request)
      if (!start) return
      const seconds = (performance.now() - start.at) / 1000
      const status = responseValue instanceof Response ? responseValue.status : typeof set.status === 'number' ? set.status : 200
      const labels = { method: request.method, route: route || 'unmatched', status: String(status) }
      metrics.requests.inc(labels)
      metrics.requestDuration.observe(labels, seconds)
      log.info('request', { request_id: start.id, ...labels, status, duration_ms: Math.round(seconds * 100_000) / 100 })
    })

  if (!metricsEnabled) return plugin
  // Bun counts the requests its server is answering; read at scrape time, it cannot drift.
  let inFlight = 0
  metrics.registry.gauge('http_requests_in_flight', 'HTTP requests being answered, this scrape included.', () => [[{}, inFlight]])
  return plugin.get(
    '/metrics',
    async ({ set, server }) => {
      inFlight = server?.pendingRequests ?? 0
      set.headers['content-type'] = 'text/plain; version=0.0.4; charset=utf-8'
      return metrics.registry.render()
    },
    {
      response: { 200: t.String({ description: 'Prometheus text exposition format 0.0.4' }) },
      detail: { tags: ['ops'], summary: 'Prometheus metrics (text exposition format)' },
    },
  )
}
