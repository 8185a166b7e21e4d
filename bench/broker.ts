/**
 * The broker benchmark: `bun run bench:broker`. Against the compiled binary and the RabbitMQ on this
 * machine (BENCH_AMQP_URL), on SQLite and on PostgreSQL (BENCH_DATABASE_URL): how many events a
 * second the relay publishes, each confirmed, draining a backlog written while it was off; and, under
 * a steady load of rooms opened over HTTP, how long an event takes from its commit to a consumer.
 * A consumer bound to the exchange counts every message. Rewrites the "Broker" section of
 * bench/RESULTS.md.
 */
import { join } from 'node:path'
import { Connection } from 'rabbitmq-client'
import { openDatabase } from '../src/db/database'
import { EventStore } from '../src/modules/events/store'
import type { StoredEvent } from '../src/modules/events/model'
import { buildBinary, cpuSeconds, freshPostgresDatabase, quantile, startBinary, writeSection } from './proc'

const WORK = join(import.meta.dir, '.work-broker')
const POSTGRES_URL = Bun.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const AMQP_URL = Bun.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const RESULTS = join(import.meta.dir, 'RESULTS.md')
/** Events in the backlog, spread over this many rooms (and the accounts stream). */
const BACKLOG = 50_000
const ROOMS = 1_000
/** The steady load: rooms opened per second over HTTP, for this long. */
const RATE = 200
const SECONDS = 10

const BINARY = buildBinary(WORK)

async function instance(port: number, databaseUrl: string, exchange: string) {
  return startBinary(BINARY, port, {
    DATABASE_URL: databaseUrl,
    JWT_SECRET: 'bench-secret-that-is-long-enough-for-hs256',
    AUTH_RATE_LIMIT: '1000000',
    ROOM_RATE_LIMIT: '1000000',
    ROOM_QUOTA: '100000',
    ROOM_SEAT_QUOTA: '100000',
    PASSWORD_MEMORY_COST: '19456',
    LOG_LEVEL: 'warn',
    AMQP_URL,
    AMQP_EXCHANGE: exchange,
  })
}

/** A queue bound to every key of `exchange`, counting messages and how long after their commit each came. */
async function consumer(exchange: string) {
  const connection = new Connection(AMQP_URL)
  connection.on('error', () => {})
  const queue = `${exchange}.bench`
  const seen = new Set<string>()
  const latencies: number[] = []
  let measuring = false
  const consuming = connection.createConsumer(
    {
      queue,
      queueOptions: { durable: true },
      qos: { prefetchCount: 1000 },
      exchanges: [{ exchange, type: 'topic', durable: true }],
      queueBindings: [{ exchange, queue, routingKey: '#' }],
    },
    async (message) => {
      seen.add(String(message.messageId))
      if (measuring) latencies.push(Date.now() - Date.parse(message.body.occurred_at))
    },
  )
  await new Promise<void>((resolve) => consuming.once('ready', resolve))
  return {
    seen,
    latencies,
    measure: () => (measuring = true),
    async close() {
      await consuming.close()
      const channel = await connection.acquire()
      await channel.queueDelete({ queue })
      await channel.exchangeDelete({ exchange })
      await channel.close()
      await connection.close()
    },
  }
}

/** BACKLOG events written straight to the log, as the service writes them, before the relay first runs. */
async function writeBacklog(databaseUrl: string) {
  const db = await openDatabase(databaseUrl, 2)
  const { migrate } = await import('../src/db/migrations')
  await migrate(db)
  const store = new EventStore(db.dialect)
  const rooms = Array.from({ length: ROOMS }, () => crypto.randomUUID())
  for (let written = 0; written < BACKLOG; written += 500) {
    await db.transaction(async (tx) => {
      const events: StoredEvent[] = []
      for (let i = 0; i < 500; i++) {
        const roomId = rooms[(written + i) % ROOMS]!
        const stream = i % 10 === 0 ? 'accounts' : `room:${roomId}`
        const event = stream === 'accounts' ? ({ type: 'account_created', user_id: crypto.randomUUID() } as const) : ({ type: 'room_ready', room_id: roomId } as const)
        events.push({ stream, seq: await store.nextSeqs(stream, 1, tx), event, created_at: new Date().toISOString() })
      }
      const positions = await store.allocate(events.length, tx)
      events.forEach((stored, index) => (stored.position = positions[index]))
      await store.insert(events, tx)
    })
  }
  await db.close()
}

async function relayReady(base: string) {
  return ((await (await fetch(`${base}/ready`)).json()) as { relay: { lag_events: number; lag_seconds: number } }).relay
}

async function measure(store: string, databaseUrl: string, port: number) {
  const exchange = `sgw_bench.${crypto.randomUUID()}`
  const counting = await consumer(exchange)
  console.log(`== ${store}: ${BACKLOG.toLocaleString('en')} events written while the relay was off`)
  await writeBacklog(databaseUrl)
  const started = performance.now()
  const server = await instance(port, databaseUrl, exchange)
  while (counting.seen.size < BACKLOG) await Bun.sleep(20)
  const drained = (performance.now() - started) / 1000
  const drainCpu = cpuSeconds(server.child.pid)
  console.log(`  drained in ${drained.toFixed(1)} s: ${(BACKLOG / drained).toFixed(0)} events/s, ${((drainCpu * 1e6) / BACKLOG).toFixed(0)} µs of service CPU each`)

  console.log(`== ${store}: ${RATE} rooms opened a second over HTTP for ${SECONDS} s`)
  const owner = (await (
    await fetch(`${server.base}/auth/registrate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'broker_bench', password: 'bench-password' }) })
  ).json()) as { access_token: { token: string } }
  counting.measure()
  const lags: number[] = []
  const sampling = setInterval(async () => lags.push((await relayReady(server.base)).lag_events), 100)
  let opened = 0
  const requests: Array<Promise<unknown>> = []
  // An open loop: a request every 1/RATE s, whether the previous one has answered or not.
  for (let tick = 0, begun = performance.now(); performance.now() - begun < SECONDS * 1000; tick++) {
    const request = fetch(`${server.base}/rooms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${owner.access_token.token}` },
      body: JSON.stringify({ room_name: `Bench ${tick}` }),
    })
    requests.push(request.then((answer) => answer.status === 201 && opened++))
    await Bun.sleep(1000 / RATE)
  }
  await Promise.all(requests)
  clearInterval(sampling)
  const expected = BACKLOG + 1 + opened
  for (const until = Date.now() + 30_000; counting.seen.size < expected && Date.now() < until; ) await Bun.sleep(20)
  const steady = { opened, received: counting.seen.size - BACKLOG - 1, p50: quantile(counting.latencies, 0.5), p99: quantile(counting.latencies, 0.99), lagMax: Math.max(...lags) }
  console.log(`  ${opened} rooms opened, ${steady.received} events published; commit to consumer p50 ${steady.p50} ms, p99 ${steady.p99} ms; lag at most ${steady.lagMax} positions`)
  server.child.kill()
  await counting.close()
  return { drained, drainCpu, steady }
}

const rows: string[] = []
const stores: Array<[string, () => Promise<string>]> = [
  ['SQLite', async () => `sqlite:${join(WORK, 'broker.sqlite')}`],
  [
    'PostgreSQL',
    () => freshPostgresDatabase(POSTGRES_URL, 'sgw_bench_broker'),
  ],
]
for (const [index, [store, database]] of stores.entries()) {
  const { drained, drainCpu, steady } = await measure(store, await database(), 4701 + index)
  rows.push(
    `| ${store} | ${(BACKLOG / drained).toFixed(0)} | ${((drainCpu * 1e6) / BACKLOG).toFixed(0)} | ${steady.opened} | ${steady.p50} | ${steady.p99} | ${steady.lagMax} |`,
  )
}

writeSection(RESULTS, 'Broker', [
  `\`bun run bench:broker\`, ${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores, RabbitMQ on the same machine; the consumer too.`,
  `Backlog: ${BACKLOG.toLocaleString('en')} events (a tenth on the accounts stream, the rest over ${ROOMS.toLocaleString('en')} room streams) written while the relay was off, then drained by`,
  'one instance: each stream\'s events one after another, each confirmed before the next, the streams side by side. Steady load:',
  `${RATE} rooms opened a second over HTTP for ${SECONDS} s (each a \`rooms.room_created\` event); latency from the event's commit to the consumer; lag`,
  'sampled from /ready every 100 ms.',
  '',
  '| store | backlog drained, events/s | service CPU µs per event | rooms opened under load | commit to consumer p50 ms | p99 ms | lag at most (positions) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows,
  '',
])
process.exit(0)
