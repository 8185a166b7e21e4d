import type { Server, ServerWebSocket } from 'bun'
import type { Config } from '../../config'
import type { Logger } from '../../lib/logger'
import type { Metrics } from '../../metrics'
import type { Reason } from '../../shared/errors'
import { CLOSE, type ClientFrame, ClientFrames, type CloseReason, clientFrameCheck, type FrameError, type ServerFrame } from './protocol'

/** Bun's own socket under Elysia's wrapper (its data is Elysia's business). */
export type Socket = ServerWebSocket<any>

/** A websocket as the transport keeps it: where it came from, what it may still send, how it ended. */
export interface Link {
  socket: Socket
  /** The client address it was admitted under (admit()). */
  address: string
  /** Frames are handled one after another: Bun runs async message handlers side by side. */
  inbox: Promise<void>
  /** Frames this socket may still send in the current second. */
  allowance: number
  allowanceAt: number
  /** Why the server closed it, when it did. */
  closing?: CloseReason
  closed: boolean
}

/**
 * What every websocket goes through, whoever it belongs to: admission per client address, frames
 * checked against the protocol and rate-limited, handled one after another; frames out, with
 * slow consumers closed rather than silently dropped; close codes; fan-out to Bun topics.
 */
export class Transport {
  /** Sockets per client address, from their admission to their close. */
  readonly #addresses = new Map<string, number>()
  /** Bytes published to each topic since its sockets' output was last looked at. */
  readonly #unchecked = new Map<string, number>()
  #server?: Server<unknown>

  constructor(private readonly deps: { policy: Config['realtime']; metrics: Metrics; log: Logger }) {}

  /** The server whose topics it publishes to, once it listens. */
  serveOn(server: Server<unknown>): void {
    this.#server = server
  }

  /**
   * Counts a socket about to be opened for `address`; false when the address holds
   * REALTIME_MAX_SOCKETS_PER_ADDRESS already. Every admission ends in a link's close or leave().
   */
  admit(address: string): boolean {
    const held = this.#addresses.get(address) ?? 0
    if (held >= this.deps.policy.maxSocketsPerAddress) return false
    this.#addresses.set(address, held + 1)
    return true
  }

  /** An admitted socket that never opened, or one that closed. */
  leave(address: string): void {
    const held = (this.#addresses.get(address) ?? 1) - 1
    if (held > 0) this.#addresses.set(address, held)
    else this.#addresses.delete(address)
  }

  /** A new link's own state. */
  link(socket: Socket, address: string): Link {
    return { socket, address, inbox: Promise.resolve(), allowance: this.deps.policy.messageRate, allowanceAt: Date.now(), closed: false }
  }

  /**
   * A frame from the client: within REALTIME_MESSAGE_RATE (else 4029), a frame of the protocol
   * (else 4000), handed to `handle` after the ones before it. A handler that fails (the store could
   * not answer) closes the socket with 1011.
   */
  receive(link: Link, frame: unknown, handle: (frame: ClientFrame) => Promise<void> | void): void {
    if (link.closed) return
    if (!this.#allow(link)) return this.close(link, 'rateLimited', `more than ${this.deps.policy.messageRate} frames a second`)
    link.inbox = link.inbox
      .then(() => {
        if (link.closed || link.closing) return
        if (!clientFrameCheck.Check(frame)) return this.close(link, 'badFrame', describeBadFrame(frame))
        return handle(frame)
      })
      .catch((error) => {
        this.deps.log.error('realtime frame failed', { error: String(error) })
        this.close(link, 'internalError', 'the event log could not be read')
      })
  }

  /** Sends a frame, or closes a socket whose output has piled up past REALTIME_SLOW_CONSUMER_BYTES (Bun would drop it silently). */
  send(link: Link, frame: ServerFrame | string): boolean {
    if (link.closed) return false
    const status = link.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame), false)
    if (status > 0 || (status === -1 && link.socket.getBufferedAmount() <= this.deps.policy.slowConsumerBytes)) return true
    this.close(link, 'slowConsumer', 'events were coming faster than this client read them; reconnect and resume')
    return false
  }

  /** A refused subscribe or typing frame; the socket stays open. */
  refuse(link: Link, stream: string, error: FrameError, reason?: Reason): void {
    this.send(link, { op: 'error', error, stream, ...(reason && { reason }) })
  }

  /**
   * Fans `frame` out to the sockets in `topic` (`listeners`), natively: one serialisation, no
   * JavaScript per socket. Their output is looked at each time the topic has taken another
   * REALTIME_SLOW_CONSUMER_BYTES / REALTIME_MAX_SUBSCRIPTIONS bytes: however many topics a socket is
   * in, its output cannot pass twice the limit unseen, and Bun's own limit is four times it.
   */
  publish(topic: string, frame: ServerFrame | string, listeners: Iterable<Link>): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame)
    this.#server?.publish(topic, text, false)
    const { slowConsumerBytes, maxSubscriptions } = this.deps.policy
    const unchecked = (this.#unchecked.get(topic) ?? 0) + Buffer.byteLength(text)
    if (unchecked < slowConsumerBytes / maxSubscriptions) return void this.#unchecked.set(topic, unchecked)
    this.#unchecked.delete(topic)
    for (const link of listeners)
      if (link.socket.getBufferedAmount() > slowConsumerBytes)
        this.close(link, 'slowConsumer', 'events were coming faster than this client read them; reconnect and resume')
  }

  /** A topic nobody here follows any more. */
  forget(topic: string): void {
    this.#unchecked.delete(topic)
  }

  close(link: Link, reason: CloseReason, message: string): void {
    if (link.closed || link.closing) return
    link.closing = reason
    link.socket.close(CLOSE[reason], message)
  }

  /** The socket closed: its address frees a place, and its reason is counted. */
  closed(link: Link): void {
    link.closed = true
    this.leave(link.address)
    this.deps.metrics.realtimeCloses.inc({ reason: link.closing ?? 'client' })
  }

  /** A token bucket of REALTIME_MESSAGE_RATE frames, refilled every second. */
  #allow(link: Link): boolean {
    const { messageRate } = this.deps.policy
    const now = Date.now()
    link.allowance = Math.min(messageRate, link.allowance + ((now - link.allowanceAt) / 1000) * messageRate)
    link.allowanceAt = now
    if (link.allowance < 1) return false
    link.allowance -= 1
    return true
  }
}

/** What is wrong with a frame, without quoting it. */
function describeBadFrame(frame: unknown): string {
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return 'frames are JSON objects with an op'
  const { op } = frame as { op?: unknown }
  if (typeof op !== 'string' || !Object.hasOwn(ClientFrames, op)) return 'unknown op'
  const error = clientFrameCheck.Errors(frame).First()
  return error ? `${op}: ${error.path || '/'} ${error.message}`.slice(0, 120) : `${op}: invalid`
}
