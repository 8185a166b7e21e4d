import { Elysia } from 'elysia'
import type { Config } from './config'
import type { AppContext } from './context'
import { chatRoutes } from './modules/chat'
import { credentialsRoutes } from './modules/credentials'
import { oauthRoutes } from './modules/credentials/oauth-routes'
import { qrLoginRoutes } from './modules/credentials/qr-routes'
import { dmsRoutes } from './modules/dms'
import { exportRoutes } from './modules/export'
import { healthRoutes } from './modules/health'
import { lobbyRoutes } from './modules/lobby'
import { invitesRoutes } from './modules/rooms/invites'
import { realtimeRoutes, realtimeUpgrade } from './modules/realtime'
import { protocolPageRoutes } from './modules/realtime/protocol-page'
import { roomsRoutes } from './modules/rooms'
import { sessionsRoutes } from './modules/sessions'
import { usersRoutes } from './modules/users'
import { linkedAccountsRoutes } from './modules/users/linked-routes'
import { avatarsRoutes } from './modules/avatars'
import { docs } from './plugins/docs'
import { errorHandler } from './plugins/errors'
import { accessClaims, authGuard } from './plugins/auth'
import { observability } from './plugins/observability'
import { rateLimit } from './plugins/rate-limit'
import { type BodyKind, security } from './plugins/security'

export function createApp(context: AppContext) {
  const { config } = context
  const { sessions, verifier } = context
  const verify = (token: string) => verifier.verify(token)
  const guard = authGuard({ verify, authenticate: (sessionId, userId) => sessions.authenticate(sessionId, userId) })
  // Registration, login, refresh and change of password share one limit per address.
  const authLimit = rateLimit(config.authRateLimit, config.trustProxy)
  // Typed without the prefix, which clients (Eden, client/) take as part of their base URL.
  const api = new Elysia({ prefix: config.apiPrefix as '' })
    .use(credentialsRoutes(context, guard, authLimit))
    .use(qrLoginRoutes(context, guard, authLimit))
    .use(oauthRoutes(context, guard, authLimit))
    .use(sessionsRoutes(context, guard, authLimit))
    .use(usersRoutes({ ...context, confirmPassword: (user, password, caller) => context.credentials.password.confirm(user, password, caller) }, guard))
    .use(linkedAccountsRoutes(context, guard))
    .use(avatarsRoutes(context, guard))
    .use(roomsRoutes(context, guard))
    .use(invitesRoutes(context, guard))
    .use(chatRoutes(context, guard))
    .use(dmsRoutes(context, guard))
    .use(exportRoutes(context, guard))
    .use(realtimeRoutes(context))

  const bodies = new Map<string, BodyKind>()
  const uploads = {
    maxBytes: config.avatars.maxBytes + MULTIPART_FRAMING_BYTES,
    atOnce: config.avatars.uploadsAtOnce,
    uploader: async (request: Request) => {
      const claims = await accessClaims(request, verify)
      if (!claims) return undefined
      return sessions.authenticate(claims.sid, claims.sub).then(
        () => claims.sub,
        () => undefined,
      )
    },
  }
  // normalize: false makes unknown body fields a 422 instead of silently dropping them.
  const app = new Elysia({
    normalize: false,
    serve: { maxRequestBodySize: hardBodyLimit(Math.max(config.maxBodyBytes, uploads.maxBytes)), routes: realtimeUpgrade(context) },
    websocket: websocketOptions(config.realtime),
  })
    .use(observability(context.log, context.metrics, context.tracer))
    .use(errorHandler(context.log))
    .use(security({ ...config, bodyOf: (method, route) => bodies.get(`${method} ${route}`), uploads }))
    .use(config.swaggerEnabled ? docs(context.version) : new Elysia())
    .use(config.swaggerEnabled ? protocolPageRoutes({ version: context.version, apiPrefix: config.apiPrefix, exchange: config.broker.exchange }) : new Elysia())
    .use(healthRoutes(context))
    .use(lobbyRoutes(context))
    .use(api)
  for (const route of app.routes)
    if (route.hooks?.body) bodies.set(`${route.method} ${route.path}`, takesFiles(route.hooks.parse) ? 'multipart' : 'json')
  return app
}

export type App = ReturnType<typeof createApp>

/** Room for the form around an uploaded file: boundaries, part headers, a long file name. */
const MULTIPART_FRAMING_BYTES = 16_384

/** Whether a route declares `parse: 'multipart/form-data'` (the only way one takes files). */
const takesFiles = (parse: unknown) => Array.isArray(parse) && parse.some((parser) => parser?.fn === 'multipart/form-data')

/**
 * Bodies over MAX_BODY_BYTES (AVATAR_MAX_BYTES for an avatar) get 413 in the envelope (plugins/security.ts) without being read.
 * Bun itself cuts off anything past this larger bound, before any of our code runs, with a bare 413.
 */
const hardBodyLimit = (maxBodyBytes: number) => maxBodyBytes * 4

/**
 * Bun's websocket settings. The hub closes a socket whose output passes REALTIME_SLOW_CONSUMER_BYTES
 * with 4009, a few times a second; Bun's own limit, four times that, is the backstop for a burst in
 * between (it closes without a code, never drops a frame silently). Frames go uncompressed: one
 * serialisation per event, whatever the number of sockets.
 */
const websocketOptions = ({ idleTimeout, maxFrameBytes, slowConsumerBytes }: Config['realtime']) => ({
  idleTimeout,
  sendPings: true,
  maxPayloadLength: maxFrameBytes,
  backpressureLimit: slowConsumerBytes * 4,
  closeOnBackpressureLimit: true,
  perMessageDeflate: false,
})
