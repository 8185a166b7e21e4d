import { type Static, Type as T } from '@sinclair/typebox'
import { ConfigError } from '../../config'
import { ACCOUNTS_STREAM, EVENT_TYPES, LobbyEventSchema, type StoredEvent } from '../events/model'

/** The version of the message body below; a change that is not a new optional field makes the next one. */
export const SCHEMA_VERSION = 1

/**
 * The body of every message the relay publishes: the event as the log keeps it, and where it sits.
 * `id` is also the AMQP `messageId`: a consumer that has seen it may drop the message.
 */
export const BrokerMessageSchema = T.Object(
  {
    schema_version: T.Literal(SCHEMA_VERSION, { description: 'the version of this body; consumers refuse versions they do not know' }),
    id: T.String({
      description: "the event's id, also the AMQP messageId: `<log epoch>:<stream>:<seq>`. A message seen again (after a relay's crash) has the same id",
    }),
    stream: T.String({ description: 'the stream it was written to: `accounts`, `room:<id>`, `chat:<id>` or `user:<id>`' }),
    seq: T.Integer({ minimum: 1, description: 'its number in that stream: consecutive, and published in this order' }),
    position: T.Integer({ minimum: 1, description: 'its place in the whole log, across streams' }),
    occurred_at: T.String({ format: 'date-time', description: 'when its change committed, give or take a few milliseconds' }),
    event: LobbyEventSchema,
  },
  { title: 'DomainEvent', additionalProperties: false },
)
export type BrokerMessage = Static<typeof BrokerMessageSchema>

/** The first word of a routing key: which kind of stream the event comes from. */
export const DOMAINS = ['accounts', 'rooms', 'chat', 'users'] as const

const DOMAIN_OF_KIND: Record<string, (typeof DOMAINS)[number]> = { room: 'rooms', chat: 'chat', user: 'users' }

/** `<domain>.<event type>`, such as `rooms.member_joined`; undefined for streams that never leave the service (QR logins). */
export function routingKeyOf(stored: Pick<StoredEvent, 'stream' | 'event'>): string | undefined {
  const domain = stored.stream === ACCOUNTS_STREAM ? 'accounts' : DOMAIN_OF_KIND[stored.stream.slice(0, stored.stream.indexOf(':'))]
  return domain && `${domain}.${stored.event.type}`
}

/** The routing keys AMQP_EVENTS names (`<domain>.<event type>` or `<domain>.*`, as the settings checked), each wildcard spelled out. */
export function allowedRoutingKeys(keys: string[]): Set<string> {
  const unknown = keys.map((key) => key.split('.')[1]!).filter((type) => type !== '*' && !(EVENT_TYPES as string[]).includes(type))
  if (unknown.length > 0) throw new ConfigError(unknown.map((type) => `AMQP_EVENTS: ${JSON.stringify(type)} is not an event type (the AsyncAPI document lists them)`))
  return new Set(keys.flatMap((key) => (key.endsWith('.*') ? EVENT_TYPES.map((type) => key.replace('*', type)) : [key])))
}
