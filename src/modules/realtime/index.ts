import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { clientAddress } from '../../lib/client-address'
import { badRequest, rateLimited } from '../../shared/errors'
import type { Socket } from './transport'
import type { RealtimeHub } from './hub'
import type { Transport } from './transport'

/**
 * GET /realtime, a websocket; the protocol is in the AsyncAPI document (/asyncapi/json) and the
 * README. The first frame authenticates (`{ op: 'auth', token }`: a token in a URL would end up
 * in proxy logs); `{ op: 'subscribe', stream, after }` replays a stream from the log and goes on
 * live. The hub (hub.ts) does the rest.
 *
 * The upgrade is Bun's own, with handlers shared by every socket and only the client's address of
 * its own: Elysia's `.ws()` keeps a copy of the whole request context with each socket (some
 * 2.5 KB; 15,000 sockets took 150 MB instead of about 110). Elysia's server-wide websocket handler
 * calls `data.open`, `data.message` and `data.close`, which is all a socket needs here.
 */
export const realtimeRoutes = ({ realtime, transport, config }: { realtime: RealtimeHub; transport: Transport; config: Config }) => {
  let server: Parameters<typeof transport.serveOn>[0] | undefined
  const handlers = {
    open: (ws: Socket) => realtime.open(ws, ws.data.address),
    message: (ws: Socket, message: string | Buffer) => realtime.message(ws, parseFrame(message)),
    close: (ws: Socket) => realtime.closed(ws),
  }
  return new Elysia()
    .onStart(({ server: started }) => {
      server = started!
      transport.serveOn(server)
    })
    .get(
      '/realtime',
      ({ request }) => {
        const address = clientAddress(request, server ?? null, config.trustProxy)
        if (!transport.admit(address)) throw rateLimited('This address holds as many websockets as it may', 10)
        // Each socket's data: its address, over the shared handlers.
        if (server?.upgrade(request, { data: Object.assign(Object.create(handlers), { address }) })) return
        transport.leave(address)
        throw badRequest('Expected a websocket upgrade')
      },
      // A websocket is no OpenAPI operation: the AsyncAPI document describes it.
      { detail: { hide: true } },
    )
}

/** A frame's JSON, or undefined when it is not JSON (the hub closes the socket for it). */
function parseFrame(message: string | Buffer): unknown {
  try {
    return JSON.parse(String(message))
  } catch {
    return undefined
  }
}
