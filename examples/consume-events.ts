// Another service following the gateway's domain events: `bun examples/consume-events.ts`.
// Settings: AMQP_URL, AMQP_EXCHANGE, QUEUE (its durable queue), BINDINGS (routing keys).
import { Connection } from 'rabbitmq-client'

const exchange = Bun.env.AMQP_EXCHANGE ?? 'sim_gateway.events'
const queue = Bun.env.QUEUE ?? 'example.gateway-events'
const bindings = (Bun.env.BINDINGS ?? 'accounts.*,rooms.*').split(',')

const rabbit = new Connection(Bun.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672')
rabbit.on('error', (error) => console.error('broker:', String(error)))

// A stream's events come in order, and after a crash of the gateway a few may come again: the
// last number handled per stream tells a repeat from news. A real service keeps it in its own
// database, written in the same transaction as what the event makes it do.
const handled = new Map<string, number>()

const consumer = rabbit.createConsumer(
  {
    queue,
    queueOptions: { durable: true },
    qos: { prefetchCount: 50 },
    // A body of an unknown version is refused, not requeued (bind a dead-letter exchange to keep it).
    requeue: false,
    exchanges: [{ exchange, type: 'topic', durable: true }],
    queueBindings: bindings.map((routingKey) => ({ exchange, queue, routingKey })),
  },
  async (message) => {
    const { schema_version, id, seq, event } = message.body
    if (schema_version !== 1) throw new Error(`schema_version ${schema_version} is not known here`)
    // `<log epoch>:<stream>`: a gateway database started afresh numbers its streams from 1 again.
    const stream = id.slice(0, id.lastIndexOf(':'))
    if (seq <= (handled.get(stream) ?? 0)) return // seen already: acknowledged, not done again
    console.log(JSON.stringify({ routing_key: message.routingKey, id, event }))
    handled.set(stream, seq)
  },
)
consumer.on('error', (error) => console.error('consumer:', String(error)))

process.on('SIGTERM', async () => {
  await consumer.close()
  await rabbit.close()
  process.exit(0)
})
