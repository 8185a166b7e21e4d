import { afterAll, describe, expect, test } from 'bun:test'
import { loadConfig } from '../../src/config'
import { createLogger } from '../../src/lib/logger'
import { type Span, Tracer } from '../../src/lib/tracing'
import { closeTestResources, STORE, startTestServer, TEST_ENV } from '../support/harness'
import { lobby } from '../support/lobby'
import { startService } from '../support/process'

// OpenTelemetry traces over OTLP/HTTP: what a collector receives, checked by a stand-in collector
// that keeps every export it is sent.

afterAll(closeTestResources)

function collector() {
  const exports: any[] = []
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      exports.push({ path: new URL(request.url).pathname, type: request.headers.get('content-type'), body: await request.json() })
      return new Response('{}', { headers: { 'content-type': 'application/json' } })
    },
  })
  const spans = () => exports.flatMap((sent) => sent.body.resourceSpans.flatMap((resource: any) => resource.scopeSpans.flatMap((scope: any) => scope.spans as Span[])))
  return { url: `http://127.0.0.1:${server.port}`, exports, spans, stop: () => server.stop(true) }
}

const attributes = (span: Span) => Object.fromEntries(span.attributes.map(({ key, value }) => [key, 'stringValue' in value ? value.stringValue : Number(value.intValue)]))

describe(`tracing on ${STORE}`, () => {
  test('one SERVER span per request named by its route template, database statements as CLIENT spans under it, traceparent continued', async () => {
    const otlp = collector()
    afterAll(otlp.stop)
    const server = await startTestServer({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: 'gateway-under-test' })
    const player = await server.client.register('traced_player')
    const room = await lobby(server.client).createRoom(player)
    const incoming = { trace: '4bf92f3577b34da6a3ce929d0e0e4736', parent: '00f067aa0ba902b7' }
    const read = await server.client.call('GET', `/rooms/${room.room_id}`, { token: player.access, headers: { traceparent: `00-${incoming.trace}-${incoming.parent}-01` } })
    expect(read.status).toBe(200)
    expect((await server.client.get('/rooms/not-a-uuid', player.access)).status).toBe(400)
    await server.context.tracer!.flush()

    expect(otlp.exports[0]).toMatchObject({ path: '/v1/traces', type: 'application/json' })
    expect(otlp.exports[0].body.resourceSpans[0].resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'gateway-under-test' } })
    const spans = otlp.spans()
    const requestSpan = spans.find((span) => span.name === 'GET /rooms/:room_id' && span.traceId === incoming.trace)!
    expect(requestSpan).toMatchObject({ kind: 2, parentSpanId: incoming.parent })
    expect(attributes(requestSpan)).toEqual({ 'http.request.method': 'GET', 'http.route': '/rooms/:room_id', 'http.response.status_code': 200 })
    expect(requestSpan.spanId).toMatch(/^[0-9a-f]{16}$/)
    expect(BigInt(requestSpan.endTimeUnixNano)).toBeGreaterThan(BigInt(requestSpan.startTimeUnixNano))

    const children = spans.filter((span) => span.parentSpanId === requestSpan.spanId)
    expect(children.length).toBeGreaterThanOrEqual(2)
    for (const child of children) {
      expect(child).toMatchObject({ kind: 3, traceId: incoming.trace })
      expect(attributes(child)['db.system']).toBe(STORE === 'postgres' ? 'postgresql' : 'sqlite')
      expect(BigInt(child.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(requestSpan.startTimeUnixNano))
    }
    expect(children.map((child) => child.name)).toEqual(expect.arrayContaining(['SELECT sessions', 'SELECT rooms']))
    // Statements, never their parameters: the session id and the room id stay out of the spans.
    expect(JSON.stringify(children)).not.toContain(room.room_id)
    // Requests of their own get traces of their own, and each one is there.
    const registration = spans.find((span) => span.name === 'POST /auth/registrate')!
    expect(registration.traceId).not.toBe(incoming.trace)
    expect(spans.some((span) => span.parentSpanId === registration.spanId && span.name === 'INSERT users')).toBe(true)
    expect(spans.find((span) => span.name === 'GET /rooms/:room_id' && attributes(span)['http.response.status_code'] === 400)).toBeDefined()
  })

  test("a request's log line names its trace, so that Grafana can link one to the other", async () => {
    const otlp = collector()
    afterAll(otlp.stop)
    const service = await startService({ ...TEST_ENV, DATABASE_URL: 'sqlite::memory:', LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
    const trace = '0af7651916cd43dd8448eb211c80319c'
    expect((await fetch(`${service.baseUrl}/health`, { headers: { traceparent: `00-${trace}-b7ad6b7169203331-01` } })).status).toBe(200)
    service.child.kill('SIGTERM')
    const lines = (await service.output()).split('\n').filter((line) => line.includes('"message":"request"'))
    expect(lines.map((line) => JSON.parse(line)).find((entry) => entry.trace_id === trace)).toMatchObject({ request_id: expect.any(String), trace_id: trace })
  })

  test('a collector that cannot be reached costs one warning: no span is made until it answers again, and then they flow', async () => {
    const lines: string[] = []
    const port = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response() })
    const freePort = port.port
    port.stop(true)
    const tracer = new Tracer({ url: `http://127.0.0.1:${freePort}/v1/traces`, serviceName: 'down', serviceVersion: '1', probeEveryMs: 200 }, createLogger('info', (line) => lines.push(line)))
    /** A request as the service makes one: whether it was given a span. */
    const request = () => {
      const span = tracer.startRequest(null)
      if (span) tracer.endRequest(span, 'GET', '/health', 200)
      return span !== undefined
    }
    const exports: any[] = []
    let otlp: ReturnType<typeof Bun.serve> | undefined
    try {
      expect(request()).toBe(true)
      await Promise.all([tracer.flush(), tracer.flush()])
      for (let i = 0; i < 3; i++) {
        expect(request()).toBe(false)
        await tracer.flush()
      }
      expect(lines.filter((line) => line.includes('trace export failed')).length).toBe(1)
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', message: expect.stringContaining('no spans are made until the collector answers') })

      otlp = Bun.serve({ port: freePort, hostname: '127.0.0.1', fetch: async (incoming) => (exports.push(await incoming.json()), new Response('{}')) })
      expect(request()).toBe(false)
      await Bun.sleep(250)
      await tracer.flush() // the probe: an empty export
      expect(lines.some((line) => line.includes('trace export resumed'))).toBe(true)
      expect(request()).toBe(true)
    } finally {
      await tracer.shutdown()
      await otlp?.stop(true)
    }
    const sent = exports.flatMap((body) => body.resourceSpans.flatMap((resource: any) => resource.scopeSpans.flatMap((scope: any) => scope.spans)))
    expect(sent.length).toBe(1)
    expect(sent[0]).toMatchObject({ name: 'GET /health' })
  })

  test('OTEL_SDK_DISABLED=true: nothing is traced even with a collector named', () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318' }).tracing).toMatchObject({ url: 'http://jaeger:4318/v1/traces' })
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318', OTEL_SDK_DISABLED: 'true' }).tracing).toBeUndefined()
  })

  test('without OTEL_EXPORTER_OTLP_ENDPOINT nothing is traced and nothing is sent', async () => {
    const server = await startTestServer()
    expect(server.context.tracer).toBeUndefined()
    expect(server.config.tracing).toBeUndefined()
  })
})
