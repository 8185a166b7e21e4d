import { type Context, Elysia } from 'elysia'
import type { Logger } from '../lib/logger'
import type { RequestSpan, Tracer } from '../lib/tracing'
import type { Metrics } from '../metrics'

const INCOMING_ID = /^[\w.:-]{1,128}$/

/** Request ids: unique per process (random prefix) and cheap (a counter), unless the caller sent one. */
const ID_PREFIX = crypto.randomUUID().slice(0, 8)
let requestCounter = 0

interface Traced {
  span?: RequestSpan
}

interface Timed {
  requestId?: string
  startedAt?: number
}

/**
 * Request ids (X-Request-Id kept from the caller when sane, made up otherwise, echoed on every
 * answer), one JSON log line and one metrics sample per request.
 * Log lines carry the route template, never the raw path or query, so ids and tokens stay out.
 */
export const observability = (log: Logger, metrics: Metrics, tracer?: Tracer) => {
  // One entry per method, route template and status: the metric series and the fixed part of the log line.
  const series = new Map<string, { requests: { value: number }; duration: ReturnType<Metrics['requestDuration']['series']>; logFields: string }>()
  const seriesFor = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`
    let entry = series.get(key)
    if (!entry) {
      const labels = { method, route, status: String(status) }
      entry = {
        requests: metrics.requests.series(labels),
        duration: metrics.requestDuration.series(labels),
        logFields: `"method":${JSON.stringify(method)},"route":${JSON.stringify(route)},"status":${status}`,
      }
      series.set(key, entry)
    }
    return entry
  }

  // The id and start time ride on `set`, the request's own response state. They are stamped when
  // the request is about to be handled (an `onRequest` hook would send every request through
  // Elysia's slower generic path), or on its way to the error handler when it failed before that:
  // no route, or a body that could not be read. (Hooks destructure what they use: Elysia reads
  // that to skip work.)
  const stamp = ({ request, set }: { request: Request; set: Context['set'] }) => {
    const timed = set as Timed
    if (timed.startedAt !== undefined) return
    timed.startedAt = performance.now()
    const incoming = request.headers.get('x-request-id')
    const id = incoming && INCOMING_ID.test(incoming) ? incoming : `${ID_PREFIX}-${(++requestCounter).toString(36)}`
    timed.requestId = id
    set.headers['x-request-id'] = id
  }

  const plugin = new Elysia({ name: 'observability' })
    .onTransform({ as: 'global' }, ({ request, set }) => stamp({ request, set }))
    .onError({ as: 'global' }, ({ request, set }) => stamp({ request, set }))
    .onAfterResponse({ as: 'global' }, ({ request, route, set, responseValue }) => {
      const { requestId, startedAt } = set as Timed
      if (startedAt === undefined) return
      const seconds = (performance.now() - startedAt) / 1000
      const status = statusOf(set, responseValue)
      const entry = seriesFor(request.method, route || 'unmatched', status)
      entry.requests.value++
      metrics.requestDuration.record(entry.duration, seconds)
      if (log.enabled('info')) {
        // With tracing on, the line names its trace: Grafana links it to the trace in Jaeger.
        const traceId = (set as Traced).span?.traceId
        log.raw(
          'info',
          `"message":"request","request_id":"${requestId}",${traceId ? `"trace_id":"${traceId}",` : ''}${entry.logFields},"duration_ms":${Math.round(seconds * 100_000) / 100}`,
        )
      }
    })
  if (!tracer) return plugin
  // Only with tracing on: the span opens first thing, so that the work of the request runs under it.
  return plugin
    .onRequest(({ request, set }) => {
      ;(set as Traced).span = tracer.startRequest(request.headers.get('traceparent'))
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, responseValue }) => {
      const { span } = set as Traced
      if (span) tracer.endRequest(span, request.method, route || 'unmatched', statusOf(set, responseValue))
    })
}

const statusOf = (set: Context['set'], responseValue: unknown) =>
  responseValue instanceof Response ? responseValue.status : typeof set.status === 'number' ? set.status : 200
