import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { badRequest } from '../../shared/errors'
import type { Socket } from './hub'

/**
 * GET /realtime, a websocket; the protocol is in the AsyncAPI document (/asyncapi/json) and the
 * README. The first frame authenticates (`{ op: 'auth', token }`: a token in a URL would end up
 * in proxy logs); `{ op: 'subscribe', stream, after }` replays a stream from the log and goes on
 * live. The hub (hub.ts) does the rest.
 *
 * The upgrade is Bun's own, with one handler object shared by every socket: Elysia's `.ws()`
 * keeps a copy of the whole request context with each socket (some 2.5 KB; 15,000 sockets took
 * 150 MB instead of about 110). Elysia's server-wide websocket handler calls `data.open`,
 * `data.message` and `data.close`, which is all a socket needs here.
 */
export const realtimeRoutes = ({ realtime }: AppContext) => {
  let server: Parameters<typeof realtime.serveOn>[0] | undefined
  const handlers = {
    open: (ws: Socket) => realtime.open(ws),
    message: (ws: Socket, message: string | Buffer) => realtime.message(ws, parseFrame(message)),
    close: (ws: Socket) => realtime.closed(ws),
  }
  return new Elysia()
    .onStart(({ server: started }) => {
      server = started!
      realtime.serveOn(server)
    })
    .get(
      '/realtime',
      ({ request }) => {
        if (!server?.upgrade(request, { data: handlers })) throw badRequest('Expected a websocket upgrade')
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
