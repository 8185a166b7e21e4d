import { Connection } from 'rabbitmq-client'
import type { BrokerMessage } from '../../src/modules/broker/model'

/** The RabbitMQ that runs on the developers' and CI's machines (shared/ENGINEERING.md). .ci/run starts it when it is down. */
export const TEST_AMQP_URL = Bun.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'

async function reachable(): Promise<boolean> {
  const { hostname, port } = new URL(TEST_AMQP_URL)
  try {
    const socket = await Bun.connect({ hostname, port: Number(port || 5672), socket: { data() {} } })
    socket.end()
    return true
  } catch {
    return false
  }
}

export const brokerAvailable = await reachable()
if (!brokerAvailable && Bun.env.REQUIRE_BROKER) throw new Error(`REQUIRE_BROKER is set but no broker answers at ${TEST_AMQP_URL}`)
if (!brokerAvailable) console.warn(`skipping the broker tests: no RabbitMQ at ${TEST_AMQP_URL} (rabbitmq-server -detached)`)

/** An exchange of its own for one test, so that tests never see each other's events. */
export const testExchange = () => `sgw_test.${crypto.randomUUID()}`

export interface Received {
  routingKey: string
  messageId: string
  body: BrokerMessage
  persistent: boolean
  contentType?: string
}

/**
 * A consumer as another service would run one: a durable queue bound to every routing key of
 * `exchange`, kept across broker restarts, with each message acknowledged once recorded.
 */
export async function consume(exchange: string) {
  const queue = `${exchange}.consumer`
  const connection = new Connection({ url: TEST_AMQP_URL, retryLow: 100, retryHigh: 1000 })
  connection.on('error', () => {})
  const received: Received[] = []
  const consumer = connection.createConsumer(
    {
      queue,
      queueOptions: { durable: true },
      qos: { prefetchCount: 200 },
      exchanges: [{ exchange, type: 'topic', durable: true }],
      queueBindings: [{ exchange, queue, routingKey: '#' }],
    },
    async (message) => {
      received.push({
        routingKey: message.routingKey,
        messageId: String(message.messageId),
        body: message.body as BrokerMessage,
        persistent: message.durable === true,
        contentType: message.contentType,
      })
    },
  )
  consumer.on('error', () => {})
  await new Promise<void>((resolve) => consumer.once('ready', resolve))
  return {
    received,
    /** Each message once, by messageId, in the order it first came. */
    distinct(): Received[] {
      const seen = new Set<string>()
      return received.filter((message) => !seen.has(message.messageId) && seen.add(message.messageId))
    },
    async until(done: () => boolean, timeoutMs = 20_000): Promise<void> {
      const deadline = Date.now() + timeoutMs
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`the consumer has ${received.length} messages, still waiting`)
        await Bun.sleep(20)
      }
    },
    async close(): Promise<void> {
      await consumer.close()
      const channel = await connection.acquire()
      await channel.queueDelete({ queue })
      await channel.exchangeDelete({ exchange })
      await channel.close()
      await connection.close()
    },
  }
}
