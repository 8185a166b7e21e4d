import { AsyncLocalStorage } from 'node:async_hooks'
import type { Logger } from './logger'

/**
 * OpenTelemetry traces, exported over OTLP/HTTP as JSON (the protocol every collector speaks:
 * the OpenTelemetry Collector, Tempo, Jaeger), without the SDK: one SERVER span per request named
 * by its route template, and a CLIENT span per database statement under it. Built only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set (and OTEL_SDK_DISABLED is not); otherwise nothing of this runs
 * at all. While the collector cannot be reached, no span is made and no log line names a trace:
 * an empty export asks every PROBE_EVERY_MS whether it is back.
 */

export interface TracingConfig {
  /** Where spans go: the OTLP/HTTP traces URL, such as http://collector:4318/v1/traces. */
  url: string
  serviceName: string
  serviceVersion: string
  /** How often an unreachable collector is asked again. */
  probeEveryMs?: number
}

interface Attribute {
  key: string
  value: { stringValue: string } | { intValue: string }
}

export interface Span {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: Attribute[]
  status: { code: number; message?: string }
}

export interface RequestSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  startedAt: bigint
}

const SPAN_KIND = { server: 2, client: 3 } as const
const STATUS = { unset: 0, ok: 1, error: 2 } as const
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/
/** Spans held for export at most; past it they are dropped (and counted), never the requests slowed. */
const QUEUE_LIMIT = 4096
const BATCH_SIZE = 512
const FLUSH_EVERY_MS = 1000
const PROBE_EVERY_MS = 30_000

const attribute = (key: string, value: string | number): Attribute =>
  typeof value === 'number' ? { key, value: { intValue: String(value) } } : { key, value: { stringValue: value } }

export class Tracer {
  readonly #current = new AsyncLocalStorage<RequestSpan>()
  #queue: Span[] = []
  #dropped = 0
  /** When the collector could not be reached: spans are not made until `#probe` reaches it. */
  #unreachableSince: number | undefined
  /** The flush under way: the timer and a full queue never run two at once. */
  #flushing: Promise<void> | undefined
  readonly #timer: Timer
  readonly #resource: { attributes: Attribute[] }
  readonly #probeEveryMs: number

  constructor(
    private readonly config: TracingConfig,
    private readonly log: Logger,
  ) {
    this.#resource = { attributes: [attribute('service.name', config.serviceName), attribute('service.version', config.serviceVersion)] }
    this.#probeEveryMs = config.probeEveryMs ?? PROBE_EVERY_MS
    this.#timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS).unref()
  }

  /**
   * Opens the span of a request (continuing the caller's trace from `traceparent`) and makes it
   * current for its work; none while the collector cannot be reached.
   */
  startRequest(traceparent: string | null): RequestSpan | undefined {
    if (this.#unreachableSince !== undefined) return undefined
    const parent = traceparent ? TRACEPARENT.exec(traceparent) : null
    const span = { traceId: parent?.[1] ?? randomHex(16), spanId: randomHex(8), parentSpanId: parent?.[2], startedAt: nowNanos() }
    this.#current.enterWith(span)
    return span
  }

  endRequest(span: RequestSpan, method: string, route: string, status: number): void {
    this.#push({
      traceId: span.traceId,
      spanId: span.spanId,
      ...(span.parentSpanId && { parentSpanId: span.parentSpanId }),
      name: `${method} ${route}`,
      kind: SPAN_KIND.server,
      startTimeUnixNano: String(span.startedAt),
      endTimeUnixNano: String(nowNanos()),
      attributes: [attribute('http.request.method', method), attribute('http.route', route), attribute('http.response.status_code', status)],
      status: { code: status >= 500 ? STATUS.error : STATUS.unset },
    })
  }

  /** Runs `work` as a child span of the current request's (or alone, outside any request). */
  async child<Result>(name: string, attributes: Array<[string, string]>, work: () => Promise<Result>): Promise<Result> {
    if (this.#unreachableSince !== undefined) return work()
    const parent = this.#current.getStore()
    const startedAt = nowNanos()
    let failure: unknown
    try {
      return await work()
    } catch (error) {
      failure = error
      throw error
    } finally {
      this.#push({
        traceId: parent?.traceId ?? randomHex(16),
        spanId: randomHex(8),
        ...(parent && { parentSpanId: parent.spanId }),
        name,
        kind: SPAN_KIND.client,
        startTimeUnixNano: String(startedAt),
        endTimeUnixNano: String(nowNanos()),
        attributes: attributes.map(([key, value]) => attribute(key, value)),
        status: failure === undefined ? { code: STATUS.unset } : { code: STATUS.error, message: String((failure as Error)?.message ?? failure) },
      })
    }
  }

  /**
   * Sends what is queued; a collector that does not answer costs one warning, never a request, and
   * tracing pauses until it answers again.
   */
  flush(): Promise<void> {
    this.#flushing ??= (this.#unreachableSince === undefined ? this.#send() : this.#probe()).finally(() => {
      this.#flushing = undefined
    })
    return this.#flushing
  }

  async #send(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, BATCH_SIZE)
      try {
        const response = await this.#export(batch)
        if (!response.ok) this.log.warn('trace export refused', { status: response.status, spans: batch.length })
      } catch (error) {
        this.#unreachableSince = Date.now()
        this.#queue = []
        const every = `${this.#probeEveryMs / 1000} s`
        this.log.warn(`trace export failed: no spans are made until the collector answers (asked every ${every})`, { error: String(error), spans: batch.length })
        return
      }
    }
    if (this.#dropped > 0) {
      this.log.warn('spans dropped: the collector could not keep up', { spans: this.#dropped })
      this.#dropped = 0
    }
  }

  async #probe(): Promise<void> {
    const since = this.#unreachableSince!
    if (Date.now() - since < this.#probeEveryMs) return
    try {
      await this.#export([])
      this.#unreachableSince = undefined
      this.log.info('trace export resumed: the collector answers again', { after_seconds: Math.round((Date.now() - since) / 1000) })
    } catch {
      this.#unreachableSince = Date.now()
    }
  }

  #export(spans: Span[]): Promise<Response> {
    const body = JSON.stringify({
      resourceSpans: [{ resource: this.#resource, scopeSpans: [{ scope: { name: 'sim-gateway', version: this.config.serviceVersion }, spans }] }],
    })
    return fetch(this.config.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(5000) })
  }

  /** Sends what is left, unless the collector is known to be away: a probe would only delay the exit. */
  async shutdown(): Promise<void> {
    clearInterval(this.#timer)
    await this.#flushing
    if (this.#unreachableSince === undefined) await this.flush()
  }

  #push(span: Span): void {
    if (this.#queue.length >= QUEUE_LIMIT) this.#dropped++
    else this.#queue.push(span)
    if (this.#queue.length >= BATCH_SIZE) void this.flush()
  }
}

function randomHex(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex')
}

function nowNanos(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n
}
