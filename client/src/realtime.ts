/**
 * The /realtime websocket from the client's side: authenticates with the first frame, subscribes
 * to streams, keeps each stream's last number, and after any drop reconnects with backoff and
 * resumes from it, so the application sees every event once and in order. It sends a fresh token
 * before the current one expires. The protocol itself is in the server's AsyncAPI document.
 */

/** A lobby event as the server sends it; `event.type` tells which (member_joined, invitation_received...). */
export interface RealtimeEvent {
  stream: string
  seq: number
  event: { type: string; [field: string]: unknown }
}

export interface RealtimeOptions {
  /** The service's base URL, API_PREFIX included (http or https; the socket URL is derived). */
  baseUrl: string
  /** The access token to send; `fresh` asks for a renewed one (before expiry, or after a refusal). */
  token: (fresh: boolean) => Promise<string | undefined>
  /** Each event, once, in order within its stream. */
  onEvent: (event: RealtimeEvent) => void
  /** The server could not replay what was missed (trimmed, or another database): refetch the state over REST. */
  onReset?: (stream: string) => void
  /** A stream the server stopped sending (access lost: left, kicked, invitation gone). */
  onUnsubscribed?: (stream: string, reason: string) => void
  /** The connection ended for good: the session is over, or close() was called. */
  onEnd?: (code: number, reason: string) => void
  /** Where the connection stands, each time that changes: for a page's connection indicator. */
  onState?: (state: ConnectionState) => void
  /**
   * The frames that are not events, after the connection has taken what it needs from them:
   * `presence` and `typing` (a chat's live signals), and `subscribed`, whose `online` tells who is
   * in a chat when it starts.
   */
  onFrame?: (frame: { op: string; stream?: string; [field: string]: unknown }) => void
  /** Where to resume from, as `positions` gave it earlier (kept across page loads, say). */
  resumeFrom?: RealtimePositions
  /** First and longest pause between reconnects, in ms (doubling, with jitter). */
  backoff?: { initial: number; max: number }
  WebSocket?: typeof WebSocket
}

/** `connecting` the first time, `reconnecting` after a drop (with backoff), `ended` for good. */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'ended'

/** The last number seen of each stream, and the log's epoch they belong to. */
export interface RealtimePositions {
  epoch?: string
  streams: Record<string, number>
}

/** Close codes after which reconnecting cannot help. */
const FINAL = new Set([4003])
/** How long before the token's expiry a fresh one is sent. */
const RENEW_AHEAD_MS = 30_000
/** Frames sent per second at most: half the server's default REALTIME_MESSAGE_RATE. */
const FRAMES_PER_SECOND = 10
/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_MS = 10_000

export class RealtimeConnection {
  readonly #options: RealtimeOptions
  /** Streams wanted, with the last number seen (undefined: from now on). */
  readonly #streams = new Map<string, number | undefined>()
  #epoch?: string
  #socket?: WebSocket
  #userId?: string
  #attempt = 0
  #ended = false
  #renewal?: ReturnType<typeof setTimeout>
  #freshTokenNext = false
  #connectedAt = 0
  /** Frames waiting to be sent, and the sending allowance (see #send). */
  #outbox: string[] = []
  #allowance = FRAMES_PER_SECOND
  #allowanceAt = 0
  #flushing = false
  #state: ConnectionState = 'connecting'

  constructor(options: RealtimeOptions) {
    this.#options = options
    this.#epoch = options.resumeFrom?.epoch
    for (const [stream, seq] of Object.entries(options.resumeFrom?.streams ?? {})) this.#streams.set(stream, seq)
    this.#connect()
  }

  /** Follows a stream: `user` (one's own) or `room:<id>`; from `after` when given, else from now. */
  subscribe(stream: string, after?: number): void {
    if (this.#streams.has(this.#name(stream))) return
    this.#streams.set(this.#name(stream), after)
    this.#sendWhenReady({ op: 'subscribe', stream, after, epoch: this.#epoch })
  }

  unsubscribe(stream: string): void {
    this.#streams.delete(this.#name(stream))
    this.#sendWhenReady({ op: 'unsubscribe', stream })
  }

  /** What to keep to resume later (RealtimeOptions.resumeFrom). */
  get positions(): RealtimePositions {
    const streams: Record<string, number> = {}
    for (const [stream, seq] of this.#streams) if (seq !== undefined) streams[stream] = seq
    return { epoch: this.#epoch, streams }
  }

  get connected(): boolean {
    return this.#userId !== undefined
  }

  get state(): ConnectionState {
    return this.#state
  }

  /** Sends a client frame (such as `typing`) if connected; one that cannot go now is dropped, as live signals are. */
  send(frame: { op: string; [field: string]: unknown }): void {
    this.#sendWhenReady(frame)
  }

  close(): void {
    this.#end(1000, 'closed by the client')
    this.#socket?.close(1000)
  }

  /** `user` is the own stream: user:<id> once the id is known, or as kept in the saved positions. */
  #name(stream: string): string {
    if (stream !== 'user') return stream
    if (this.#userId) return `user:${this.#userId}`
    return [...this.#streams.keys()].find((name) => name.startsWith('user:')) ?? stream
  }

  #connect(): void {
    const Socket = this.#options.WebSocket ?? WebSocket
    const url = new URL('realtime', this.#options.baseUrl.endsWith('/') ? this.#options.baseUrl : `${this.#options.baseUrl}/`)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    const socket = new Socket(url)
    this.#socket = socket
    this.#connectedAt = Number.POSITIVE_INFINITY
    socket.onmessage = (message) => this.#receive(JSON.parse(String(message.data)))
    socket.onclose = (event) => this.#closed(socket, event.code, event.reason)
  }

  #receive(frame: Record<string, any>): void {
    switch (frame.op) {
      case 'hello':
        return void this.#authenticate(this.#freshTokenNext)
      case 'ready': {
        this.#connectedAt = Date.now()
        this.#setState('connected')
        this.#freshTokenNext = false
        this.#userId = frame.user_id
        if (this.#streams.has('user')) {
          // 'user' asked for before the id was known: the saved position of user:<id>, if any, stands.
          const own = `user:${frame.user_id}`
          const asked = this.#streams.get('user')
          this.#streams.delete('user')
          if (!this.#streams.has(own) || asked !== undefined) this.#streams.set(own, asked)
        }
        if (this.#epoch !== undefined && this.#epoch !== frame.epoch)
          // Numbers of another database: what they pointed at is gone, so each stream starts afresh and its state is refetched.
          for (const [stream, seq] of this.#streams) {
            this.#streams.set(stream, undefined)
            if (seq !== undefined) this.#options.onReset?.(stream)
          }
        this.#epoch = frame.epoch
        for (const [stream, after] of this.#streams) this.#send({ op: 'subscribe', stream, after, epoch: this.#epoch })
        return this.#scheduleRenewal(frame.expires_at)
      }
      case 'reauthenticated':
        return this.#scheduleRenewal(frame.expires_at)
      case 'event': {
        const last = this.#streams.get(frame.stream)
        if (!this.#streams.has(frame.stream) || (last !== undefined && frame.seq <= last)) return
        this.#streams.set(frame.stream, frame.seq)
        return this.#options.onEvent({ stream: frame.stream, seq: frame.seq, event: frame.event })
      }
      case 'subscribed':
        if (!this.#streams.has(frame.stream)) return
        if (!frame.recovered) this.#options.onReset?.(frame.stream)
        this.#streams.set(frame.stream, frame.last_seq)
        return this.#options.onFrame?.(frame as { op: string })
      case 'presence':
      case 'typing':
        return this.#options.onFrame?.(frame as { op: string })
      case 'unsubscribed':
        if (!frame.reason) return
        this.#streams.delete(frame.stream)
        return this.#options.onUnsubscribed?.(frame.stream, frame.reason)
      case 'error':
        // A refused subscribe (not_found, forbidden, too_many_subscriptions): the stream is not followed
        // (already_subscribed: it is). A refused typing or send frame names a reason and changes nothing.
        if (frame.stream && !frame.reason && !frame.client_id && frame.error !== 'already_subscribed') {
          this.#streams.delete(this.#name(frame.stream))
          this.#options.onUnsubscribed?.(frame.stream, frame.error)
        }
    }
  }

  async #authenticate(fresh: boolean): Promise<void> {
    const socket = this.#socket
    let token: string | undefined
    try {
      token = await this.#options.token(fresh)
    } catch {
      // The renewal failed on the way (network, server busy): the session may well live; try again later.
      if (socket === this.#socket) socket?.close(4000, 'token renewal failed')
      return
    }
    if (socket !== this.#socket) return
    if (!token) {
      this.#end(4001, 'no access token')
      return socket?.close(1000)
    }
    this.#send({ op: 'auth', token })
  }

  #scheduleRenewal(expiresAt: string): void {
    clearTimeout(this.#renewal)
    const wait = Math.max(1000, Date.parse(expiresAt) - Date.now() - RENEW_AHEAD_MS)
    this.#renewal = setTimeout(() => void this.#authenticate(true), wait)
  }

  #closed(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.#socket) return
    this.#userId = undefined
    // What was not sent belongs to that connection; the next one authenticates and subscribes afresh.
    this.#outbox = []
    clearTimeout(this.#renewal)
    if (this.#ended) return
    if (FINAL.has(code)) return this.#end(code, reason)
    this.#setState('reconnecting')
    // A refused or expired token: one more try with a renewed one; refused again, the session is over.
    if (code === 4001 || code === 4002) {
      if (this.#freshTokenNext && code === 4001) return this.#end(code, reason)
      this.#freshTokenNext = true
    }
    const { initial, max } = this.#options.backoff ?? { initial: 250, max: 30_000 }
    // Only a connection that lasted resets the backoff: one closed at once (4029, 1013) keeps doubling it.
    if (Date.now() - this.#connectedAt > STABLE_MS) this.#attempt = 0
    const pause = Math.min(max, initial * 2 ** this.#attempt++) * (0.5 + Math.random() / 2)
    setTimeout(() => this.#ended || this.#connect(), pause)
  }

  #end(code: number, reason: string): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#renewal)
    this.#setState('ended')
    this.#options.onEnd?.(code, reason)
  }

  #setState(state: ConnectionState): void {
    if (state === this.#state) return
    this.#state = state
    this.#options.onState?.(state)
  }

  /** Sends at most FRAMES_PER_SECOND, queueing the rest: the server closes a socket that sends more than REALTIME_MESSAGE_RATE. */
  #send(frame: object): void {
    this.#outbox.push(JSON.stringify(frame))
    this.#flush()
  }

  #flush(): void {
    const socket = this.#socket
    if (!socket || socket.readyState !== 1 || this.#flushing) return
    const now = Date.now()
    this.#allowance = Math.min(FRAMES_PER_SECOND, this.#allowance + ((now - this.#allowanceAt) / 1000) * FRAMES_PER_SECOND)
    this.#allowanceAt = now
    while (this.#outbox.length > 0 && this.#allowance >= 1) {
      socket.send(this.#outbox.shift()!)
      this.#allowance--
    }
    if (this.#outbox.length === 0) return
    this.#flushing = true
    setTimeout(() => {
      this.#flushing = false
      this.#flush()
    }, 1000 / FRAMES_PER_SECOND)
  }

  #sendWhenReady(frame: object): void {
    if (this.connected) this.#send(frame)
  }
}
