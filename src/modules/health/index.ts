import { timingSafeEqual } from 'node:crypto'
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { ApiError } from '../../plugins/errors'
import { errors, sharedModels } from '../../shared/model'

const Status = t.Object({ status: t.String(), uptime_seconds: t.Number(), version: t.String() })

/** The operational routes: liveness, readiness and the Prometheus scrape. */
export const healthRoutes = ({ db, version, metrics, config }: AppContext) => {
  const routes = new Elysia({ detail: { tags: ['ops'] } })
    .use(sharedModels)
    .get('/health', () => ({ status: 'ok', uptime_seconds: process.uptime(), version }), {
      response: { 200: Status },
      detail: { summary: 'Liveness: the process answers' },
    })
    .get(
      '/ready',
      async () => {
        try {
          await db.ping()
        } catch {
          throw new ApiError(503, 'unavailable', 'The database is not reachable')
        }
        return { status: 'ready', uptime_seconds: process.uptime(), version }
      },
      { response: { 200: Status, ...errors(503) }, detail: { summary: 'Readiness: the database answers' } },
    )
  if (!config.metricsEnabled) return routes

  const authorised = config.metricsToken === undefined ? () => true : bearerMatches(config.metricsToken)
  // Bun counts the requests its server is answering; read at scrape time, it cannot drift.
  let inFlight = 0
  metrics.registry.gauge('http_requests_in_flight', 'HTTP requests being answered, this scrape included.', () => [[{}, inFlight]])
  return routes.get(
    '/metrics',
    async ({ set, server, request }) => {
      if (!authorised(request.headers.get('authorization')))
        throw new ApiError(401, 'unauthorized', 'Scraping needs Authorization: Bearer <METRICS_TOKEN>', undefined, { 'WWW-Authenticate': 'Bearer realm="metrics"' })
      inFlight = server?.pendingRequests ?? 0
      set.headers['content-type'] = 'text/plain; version=0.0.4; charset=utf-8'
      return metrics.registry.render()
    },
    {
      response: { 200: t.String({ description: 'Prometheus text exposition format 0.0.4' }), ...errors(401) },
      detail: { summary: 'Prometheus metrics (text exposition format); with METRICS_TOKEN set, only for that bearer token' },
    },
  )
}

/** Compares an Authorization header with `Bearer <token>` in constant time (as digests of equal length). */
function bearerMatches(token: string) {
  const expected = new Bun.CryptoHasher('sha256').update(`Bearer ${token}`).digest()
  return (header: string | null) => header !== null && timingSafeEqual(new Bun.CryptoHasher('sha256').update(header).digest(), expected)
}
