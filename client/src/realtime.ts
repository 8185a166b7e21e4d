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
  /** Where to resume from, as `positions` gave it earlier (kept across page loads, say). */
  resumeFrom?: RealtimePositions
  /** First and longest pause between reconnects, in ms (doubling, with jitter). */
  backoff?: { initial: number; max: number }
  WebSocket?: typeof WebSocket
}

/** The last number seen of each stream, and the log's epoch they belong to. */
export interface RealtimePositions {
  epoch?: string
  streams: Record<string, number>
}

/** Close codes after which reconnecting cannot help. */
const FINAL = new Set([4003])
/** How long before the token's expiry a fresh one is sent. */
const RENEW_AHEAD_MS = 30_000

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

  close(): void {
    this.#end(1000, 'closed by the client')
    this.#socket?.close(1000)
  }

  #name(stream: string): string {
    return stream === 'user' && this.#userId ? `user:${this.#userId}` : stream
  }

  #connect(): void {
    const Socket = this.#options.WebSocket ?? WebSocket
    const url = new URL('realtime', this.#options.baseUrl.endsWith('/') ? this.#options.baseUrl : `${this.#options.baseUrl}/`)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    const socket = new Socket(url)
    this.#socket = socket
    socket.onmessage = (message) => this.#receive(JSON.parse(String(message.data)))
    socket.onclose = (event) => this.#closed(socket, event.code, event.reason)
  }

  #receive(frame: Record<string, any>): void {
    switch (frame.op) {
      case 'hello':
        return void this.#authenticate(this.#freshTokenNext)
      case 'ready': {
        this.#attempt = 0
        this.#freshTokenNext = false
        this.#userId = frame.user_id
        if (this.#epoch !== undefined && this.#epoch !== frame.epoch) for (const stream of this.#streams.keys()) this.#streams.set(stream, undefined)
        this.#epoch = frame.epoch
        const own = this.#streams.get('user')
        if (this.#streams.has('user')) {
          this.#streams.delete('user')
          this.#streams.set(`user:${frame.user_id}`, own)
        }
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
        return void this.#streams.set(frame.stream, frame.last_seq)
      case 'unsubscribed':
        if (!frame.reason) return
        this.#streams.delete(frame.stream)
        return this.#options.onUnsubscribed?.(frame.stream, frame.reason)
      case 'error':
        if (frame.error === 'not_found') {
          this.#streams.delete(this.#name(frame.stream))
          this.#options.onUnsubscribed?.(frame.stream, frame.error)
        }
    }
  }

  async #authenticate(fresh: boolean): Promise<void> {
    const token = await this.#options.token(fresh)
    if (!token) return this.#end(4001, 'no access token')
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
    clearTimeout(this.#renewal)
    if (this.#ended) return
    if (FINAL.has(code)) return this.#end(code, reason)
    // A refused or expired token: one more try with a renewed one; refused again, the session is over.
    if (code === 4001 || code === 4002) {
      if (this.#freshTokenNext && code === 4001) return this.#end(code, reason)
      this.#freshTokenNext = true
    }
    const { initial, max } = this.#options.backoff ?? { initial: 250, max: 30_000 }
    const pause = Math.min(max, initial * 2 ** this.#attempt++) * (0.5 + Math.random() / 2)
    setTimeout(() => this.#ended || this.#connect(), pause)
  }

  #end(code: number, reason: string): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#renewal)
    this.#options.onEnd?.(code, reason)
  }

  #send(frame: object): void {
    this.#socket?.send(JSON.stringify(frame))
  }

  #sendWhenReady(frame: object): void {
    if (this.connected) this.#send(frame)
  }
}
