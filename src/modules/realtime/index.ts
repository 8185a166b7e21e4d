import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import type { Socket } from './hub'

// Elysia types `raw` with its own copy of Bun's socket type, which lacks getBufferedAmount(); the object is Bun's.
const bunSocket = (ws: { raw: unknown }) => ws.raw as Socket

/**
 * GET /realtime, a websocket; the protocol is in the AsyncAPI document (/asyncapi/json) and the
 * README. The first frame authenticates (`{ op: 'auth', token }`: a token in a URL would end up
 * in proxy logs); `{ op: 'subscribe', stream, after }` replays a stream from the log and goes on
 * live. The hub (hub.ts) does the rest.
 */
export const realtimeRoutes = ({ realtime }: AppContext) =>
  new Elysia()
    // Topics are published through the server; a handler's context may not carry it.
    .onStart(({ server }) => realtime.serveOn(server!))
    .ws('/realtime', {
      // A websocket is no OpenAPI operation: the AsyncAPI document describes it.
      detail: { hide: true },
      open: (ws) => realtime.open(bunSocket(ws)),
      message: (ws, frame) => realtime.message(bunSocket(ws), frame),
      close: (ws) => realtime.closed(bunSocket(ws)),
    })
