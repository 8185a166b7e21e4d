import { Elysia } from 'elysia'
import type { UserGuard } from '../users/model'
import { answers, errors } from '../../shared/model'
import { exportModels } from './model'
import type { ExportService } from './service'

export const exportRoutes = ({ exporter }: { exporter: ExportService }, guard: UserGuard) =>
  new Elysia({ prefix: '/users', detail: { tags: ['users'] } })
    .use(guard)
    .use(exportModels)
    .get(
      '/me/export',
      async ({ user }) =>
        new Response(await exporter.open(user), {
          headers: { 'content-type': 'application/json; charset=utf-8', 'content-disposition': 'attachment; filename="sim-gateway-export.json"' },
        }),
      {
        auth: 'user',
        response: { 200: 'UserExport', ...errors(401, 403, 429) },
        detail: {
          summary: 'Download your data',
          description:
            'One JSON document of your data: your account with its profile and linked accounts, your identities at sign-in providers, your seats in open and closed rooms, the room messages you wrote, your conversations with both sides of them, and the users you blocked (not yet: invitations, read markers, earlier versions of edited messages). Written as it is read, so it starts at once whatever its size; should the store fail meanwhile, the connection fails rather than end a document cut short. Counts against EXPORT_RATE_LIMIT.',
          responses: answers({ 429: '`rate_limited`: you exported EXPORT_RATE_LIMIT times within USER_RATE_WINDOW.' }),
        },
      },
    )
