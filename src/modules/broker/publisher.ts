import { Connection, type Publisher as AmqpChannelPublisher } from 'rabbitmq-client'
import type { Logger } from '../../lib/logger'
import { type BrokerMessage, SCHEMA_VERSION } from './model'

/** A message of the relay: its routing key, its id (the AMQP messageId), its stream and its body. */
export interface OutgoingMessage {
  routingKey: string
  id: string
  type: string
  stream: string
  body: BrokerMessage
}

/** Where the relay publishes: resolves once the broker confirmed the message, rejects when it did not. */
export interface Publisher {
  publish(message: OutgoingMessage): Promise<void>
  close(): Promise<void>
}

/** How long a publish waits for a connection to the broker before it counts as failed (and the relay backs off). */
const ACQUIRE_TIMEOUT_MS = 5_000
/** How long closing waits for the broker to say goodbye. */
const CLOSE_WAIT_MS = 1_000
/** How long a publish waits for its confirm: a broker short of memory or disk blocks publishers without a word. */
const CONFIRM_TIMEOUT_MS = 10_000

/**
 * RabbitMQ through rabbitmq-client: one connection, reconnected in the background whenever it
 * drops, and one confirm-mode channel that declares the durable topic exchange on every (re)connect.
 * Messages are persistent and carry their event's id as messageId.
 */
export class AmqpPublisher implements Publisher {
  /** Connected on the first publish: an instance that never holds the relay never connects. */
  #open?: { connection: Connection; channel: AmqpChannelPublisher }
  #closed = false

  constructor(
    private readonly url: string,
    private readonly exchange: string,
    private readonly log: Logger,
  ) {}

  #opened(): { connection: Connection; channel: AmqpChannelPublisher } {
    if (this.#open) return this.#open
    if (this.#closed) throw new Error('the publisher is closed')
    const { url, exchange, log } = this
    const connection = new Connection({ url, connectionName: 'sim-gateway event relay', acquireTimeout: ACQUIRE_TIMEOUT_MS, retryHigh: 10_000 })
    // The client reconnects by itself; it reports the first failure of each outage only.
    connection.on('error', (error) => log.warn('the broker connection failed; reconnecting', { error: String(error) }))
    connection.on('connection', () => log.info('connected to the broker', { exchange }))
    connection.on('connection.blocked', (reason) => log.warn('the broker blocks publishing (short of memory or disk)', { reason }))
    connection.on('connection.unblocked', () => log.info('the broker takes messages again'))
    const channel = connection.createPublisher({ confirm: true, maxAttempts: 1, exchanges: [{ exchange, type: 'topic', durable: true }] })
    this.#open = { connection, channel }
    return this.#open
  }

  /** Resolves once the broker confirmed it; rejects when it refused, or did not answer within 10 s (the message may still arrive: once more after the retry). */
  async publish(message: OutgoingMessage): Promise<void> {
    const sent = this.#opened().channel.send(
      {
        exchange: this.exchange,
        routingKey: message.routingKey,
        messageId: message.id,
        type: message.type,
        durable: true,
        contentType: 'application/json',
        appId: 'sim-gateway',
        timestamp: Math.floor(Date.parse(message.body.occurred_at) / 1000),
        headers: { schema_version: SCHEMA_VERSION, stream: message.stream },
      },
      message.body,
    )
    let timer: Timer | undefined
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the broker did not confirm within 10 s')), CONFIRM_TIMEOUT_MS)))
    try {
      await Promise.race([sent, late])
    } finally {
      clearTimeout(timer)
      // A confirm or a refusal that comes after the timeout is no one's concern any more.
      sent.catch(() => {})
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    if (!this.#open) return
    const { connection, channel } = this.#open
    this.#open = undefined
    // Politely when the broker answers; a connection still trying to reach it (or blocked) is cut.
    const closed = (async () => {
      await channel.close()
      await connection.close()
    })().then(
      () => true,
      () => false,
    )
    if (!(await Promise.race([closed, Bun.sleep(CLOSE_WAIT_MS).then(() => false)]))) connection.unsafeDestroy()
  }
}
