import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { clientAddress } from '../../lib/client-address'
import type { Logger } from '../../lib/logger'
import { SECURITY_HEADERS } from '../../plugins/security'
import { type ApiError, badRequest, errorEnvelope, internalError, rateLimited } from '../../shared/errors'
import type { RealtimeHub } from './hub'
import type { Socket, Transport } from './transport'

/**
 * GET /realtime, a websocket; the protocol is in the AsyncAPI document (/asyncapi/json) and the
 * README. The first frame authenticates (`{ op: 'auth', token }`: a token in a URL would end up
 * in proxy logs); `{ op: 'subscribe', stream, after }` replays a stream from the log and goes on
 * live. The hub (hub.ts) does the rest.
 *
 * The upgrade is answered by Bun's own router (a route of Bun.serve), before Elysia: when an
 * instance dies, thousands of its players come back at once, and an upgrade needs only the
 * address's admission and Bun's handshake, not the request log, the metrics of HTTP requests and
 * the hooks of every API route (the sockets have realtime_* metrics of their own). A refusal is
 * answered in the error envelope, with the security headers. Bun's server-wide websocket handler,
 * which Elysia sets, calls `data.open`, `data.message` and `data.close`: handlers shared by every
 * socket, with only the client's address of its own (Elysia's `.ws()` keeps a copy of the whole
 * request context with each socket, some 2.5 KB).
 */
export function realtimeUpgrade({ realtime, transport, config, log }: { realtime: RealtimeHub; transport: Transport; config: Config; log: Logger }) {
  const handlers = {
    open: (ws: Socket) => realtime.open(ws, ws.data.address),
    message: (ws: Socket, message: string | Buffer) => realtime.message(ws, parseFrame(message)),
    close: (ws: Socket) => realtime.closed(ws),
  }
  const upgrade = (request: Request, server: Server<unknown>): Response | undefined => {
    const address = clientAddress(request, server, config.trustProxy)
    if (!transport.admit(address)) return refusal(rateLimited('This address holds as many websockets as it may', 10))
    try {
      // Each socket's data: its address, over the shared handlers.
      if (server.upgrade(request, { data: Object.assign(Object.create(handlers), { address }) })) return undefined
    } catch (error) {
      transport.leave(address)
      log.error('websocket upgrade failed', { error: String(error) })
      return refusal(internalError())
    }
    transport.leave(address)
    return refusal(badRequest('Expected a websocket upgrade'))
  }
  return { [`${config.apiPrefix}/realtime`]: { GET: upgrade } }
}

/** Hands the transport the server whose topics it publishes to, once it listens. A websocket is no OpenAPI operation: the AsyncAPI document describes it. */
export const realtimeRoutes = ({ transport }: { transport: Transport }) => new Elysia().onStart(({ server }) => transport.serveOn(server!))

const refusal = (error: ApiError) => Response.json(errorEnvelope(error), { status: error.status, headers: { ...SECURITY_HEADERS, ...error.headers } })

/** A frame's JSON, or undefined when it is not JSON (the hub closes the socket for it). */
function parseFrame(message: string | Buffer): unknown {
  try {
    return JSON.parse(String(message))
  } catch {
    return undefined
  }
}
