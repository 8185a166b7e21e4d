import { timingSafeEqual } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import { Elysia, t } from 'elysia'
import type { Config } from '../../config'
import { unauthorized, unavailable } from '../../shared/errors'
import { answers, errors, sharedModels } from '../../shared/model'
import type { Database } from '../../db/database'
import type { Metrics } from '../../metrics'
import type { EventRelay } from '../broker/relay'

const Status = t.Object({ status: t.String(), uptime_seconds: t.Number(), version: t.String() })
const Readiness = t.Object({
  ...Status.properties,
  relay: t.Optional(
    t.Object(
      {
        role: t.Union([t.Literal('leader'), t.Literal('standby')], { description: 'leader: this instance publishes; standby: another one does' }),
        broker: t.Union([t.Literal('up'), t.Literal('down')], { description: 'down while the last attempt to publish failed (it is retried with backoff)' }),
        // TypeBox's integers: Elysia's t.Integer documents numeric strings too.
        position: Type.Integer({ description: 'every event of the log up to this position has been published' }),
        lag_events: Type.Integer({ description: 'positions of the log past it' }),
        lag_seconds: t.Number({ description: 'age of the oldest event not yet published' }),
      },
      { description: 'With AMQP_URL: the relay of domain events to RabbitMQ. A broker that is down does not make the service unready.' },
    ),
  ),
})

/** The operational routes: liveness, readiness and the Prometheus scrape (the metrics themselves are in src/metrics.ts). */
export const healthRoutes = ({ db, version, metrics, config, relay }: { db: Database; version: string; metrics: Metrics; config: Config; relay?: EventRelay }) => {
  const routes = new Elysia({ detail: { tags: ['ops'] } })
    .use(sharedModels)
    .get('/health', () => ({ status: 'ok', uptime_seconds: process.uptime(), version }), {
      response: { 200: Status },
      detail: { summary: 'Liveness: the process answers', description: 'For a liveness probe: 200 while the process runs.' },
    })
    .get(
      '/ready',
      async () => {
        try {
          await db.ping()
        } catch {
          throw unavailable('The database is not reachable')
        }
        // The relay as of now, or as of its last poll if the log cannot be read this moment.
        return { status: 'ready', uptime_seconds: process.uptime(), version, ...(relay && { relay: await relay.refreshStatus().catch(() => relay.status) }) }
      },
      {
        response: { 200: Readiness, ...errors(503) },
        detail: {
          summary: 'Readiness: the database answers',
          description: 'For a readiness probe: 200 while the database answers, 503 `unavailable` while it does not.',
        },
      },
    )
  if (!config.metricsEnabled) return routes

  const authorised = config.metricsToken === undefined ? () => true : bearerMatches(config.metricsToken)
  return routes.get(
    '/metrics',
    async ({ set, server, request }) => {
      if (!authorised(request.headers.get('authorization')))
        throw unauthorized('Scraping needs Authorization: Bearer <METRICS_TOKEN>', { 'WWW-Authenticate': 'Bearer realm="metrics"' })
      metrics.observeRequestsInFlight(server?.pendingRequests ?? 0)
      set.headers['content-type'] = 'text/plain; version=0.0.4; charset=utf-8'
      return metrics.registry.render()
    },
    {
      response: { 200: t.String({ description: 'Prometheus text exposition format 0.0.4' }), ...errors(401) },
      detail: {
        summary: 'Prometheus metrics (text exposition format)',
        description: 'For a Prometheus scrape. With METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`; keep it internal otherwise.',
        responses: answers({ 401: '`unauthorized`: METRICS_TOKEN is set and this request did not send it.' }),
      },
    },
  )
}

/** Compares an Authorization header with `Bearer <token>` in constant time (as digests of equal length). */
function bearerMatches(token: string) {
  const expected = new Bun.CryptoHasher('sha256').update(`Bearer ${token}`).digest()
  return (header: string | null) => header !== null && timingSafeEqual(new Bun.CryptoHasher('sha256').update(header).digest(), expected)
}
