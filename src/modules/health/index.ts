import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { ApiError } from '../../plugins/errors'
import { errors, sharedModels } from '../../shared/model'

const Status = t.Object({ status: t.String(), uptime_seconds: t.Number(), version: t.String() })

export const healthRoutes = ({ db, version }: AppContext) =>
  new Elysia({ detail: { tags: ['ops'] } })
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
