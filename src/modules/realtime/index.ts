import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { accessJwt, AccessTokenVerifier } from '../auth/tokens'
import { type LobbyEvent, type StoredEvent, userStream } from '../events/model'
import type { User } from '../users/model'

/** Close codes, one for each way a socket ends. */
export const CLOSE = {
  authTimeout: 4008,
  unauthorized: 4001,
  sessionEnded: 4003,
  badFrame: 4000,
} as const

const AUTH_TIMEOUT_MS = 5000
/** Events read from the log at a time when a subscriber catches up. */
const REPLAY_BATCH = 500

interface Subscription {
  last: number
  stop: () => void
  /** Deliveries run one after another, so that replay, gap filling and live events keep their order. */
  chain: Promise<void>
}

interface SocketState {
  user?: User
  sessionId?: string
  timer: Timer
  /** Frames are handled one after another: Bun runs async message handlers side by side. */
  inbox: Promise<unknown>
  subscriptions: Map<string, Subscription>
  watch?: () => void
}

type Frame = { op: 'auth'; token: string } | { op: 'subscribe'; stream: string; after?: number } | { op: 'unsubscribe'; stream: string }

/**
 * GET /realtime, a websocket. The first frame authenticates (`{ op: 'auth', token }` within 5 s:
 * a token in a URL would end up in proxy logs). Then `{ op: 'subscribe', stream, after }` for
 * `user` (one's own stream) or `room:<id>` (a room one may see) replays the stream's events after
 * `after` from the log and goes on live, each `{ op: 'event', stream, seq, event }` exactly once
 * and in order: a gap in the live numbers is filled from the log. A session that ends closes its
 * sockets; losing a room unsubscribes from it.
 */
export const realtimeRoutes = ({ auth, events, rooms, config, jwtSecret }: AppContext) => {
  const jwt = { ...config.jwt, secret: jwtSecret }
  const verifier = new AccessTokenVerifier(jwt)
  const sockets = new Map<string, SocketState>()

  return new Elysia().use(accessJwt(jwt)).ws('/realtime', {
    // A websocket is no OpenAPI operation; its protocol is described above (an AsyncAPI document is to come).
    detail: { hide: true },
    open(ws) {
      const state: SocketState = {
        timer: setTimeout(() => ws.close(CLOSE.authTimeout, 'authenticate within 5 s'), AUTH_TIMEOUT_MS),
        subscriptions: new Map(),
        inbox: Promise.resolve(),
      }
      sockets.set(ws.id, state)
      ws.send({ op: 'hello', auth_timeout_ms: AUTH_TIMEOUT_MS })
    },
    message(ws, message) {
      const state = sockets.get(ws.id)
      if (!state) return
      const handle = async (frame: Frame) => {
        if (typeof frame !== 'object' || frame === null) return ws.close(CLOSE.badFrame, 'frames are JSON objects with an op')
        if (!state.user) {
          if (frame.op !== 'auth' || typeof frame.token !== 'string') return ws.close(CLOSE.unauthorized, 'the first frame is { op: "auth", token }')
          const claims = await verifier.verify(ws.data.accessJwt, frame.token)
          const user = claims && (await auth.authenticate(claims.sid, claims.sub).catch(() => undefined))
          if (!claims || !user) return ws.close(CLOSE.unauthorized, 'the access token is not valid')
          clearTimeout(state.timer)
          state.user = user
          state.sessionId = claims.sid
          // The socket's own stream tells it when its session ends.
          state.watch = events.listen(userStream(user.user_id), ({ event }) => {
            if (event.type === 'session_revoked' && event.session_id === state.sessionId) ws.close(CLOSE.sessionEnded, 'the session has ended')
          })
          return ws.send({ op: 'ready', user_id: user.user_id })
        }
        if (frame.op === 'subscribe') {
          const stream = frame.stream === 'user' ? userStream(state.user.user_id) : frame.stream
          if (state.subscriptions.has(stream)) return
          const allowed =
            stream === userStream(state.user.user_id) ||
            (stream.startsWith('room:') && (await rooms.get(state.user, stream.slice(5)).then(() => true, () => false)))
          if (!allowed) return ws.send({ op: 'error', error: 'not_found', stream: frame.stream })
          const subscription: Subscription = { last: Math.max(0, Number(frame.after ?? 0) || 0), stop: () => {}, chain: Promise.resolve() }
          const send = (stored: StoredEvent) => {
            subscription.last = stored.seq
            ws.send({ op: 'event', stream, seq: stored.seq, event: stored.event })
            if (losesRoom(stored.event, state.user!)) unsubscribe(state, stream)
          }
          /** The next live event, or (without one, or after a gap) whatever the log holds past the last one sent. */
          const deliver = (live?: StoredEvent) => {
            subscription.chain = subscription.chain
              .then(async () => {
                if (live && live.seq <= subscription.last) return
                if (live && live.seq === subscription.last + 1) return send(live)
                for (;;) {
                  const batch = await events.read(stream, subscription.last, REPLAY_BATCH)
                  for (const stored of batch) if (stored.seq === subscription.last + 1) send(stored)
                  if (batch.length < REPLAY_BATCH || !state.subscriptions.has(stream)) return
                }
              })
              .catch(() => ws.close(1011, 'the event log could not be read'))
          }
          subscription.stop = events.listen(stream, deliver)
          state.subscriptions.set(stream, subscription)
          deliver()
          await subscription.chain
          return ws.send({ op: 'subscribed', stream, last_seq: subscription.last })
        }
        if (frame.op === 'unsubscribe') return unsubscribe(state, frame.stream === 'user' ? userStream(state.user.user_id) : frame.stream)
        ws.close(CLOSE.badFrame, `unknown op`)
      }
      state.inbox = state.inbox.then(() => handle(message as Frame))
    },
    close(ws) {
      const state = sockets.get(ws.id)
      if (!state) return
      clearTimeout(state.timer)
      state.watch?.()
      for (const stream of state.subscriptions.keys()) unsubscribe(state, stream)
      sockets.delete(ws.id)
    },
  })
}

function unsubscribe(state: SocketState, stream: string): void {
  state.subscriptions.get(stream)?.stop()
  state.subscriptions.delete(stream)
}

/** Whether this event ends the user's right to a room's stream (they left or were kicked). */
function losesRoom(event: LobbyEvent, user: User): boolean {
  return (event.type === 'member_left' || event.type === 'member_kicked') && event.user_id === user.user_id && user.user_role !== 'admin'
}
