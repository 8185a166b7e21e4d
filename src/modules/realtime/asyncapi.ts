import type { TSchema } from '@sinclair/typebox'
import { BrokerMessageSchema, DOMAINS, SCHEMA_VERSION } from '../broker/model'
import { CLOSE, CLOSE_MEANINGS, type CloseReason, ClientFrames, ServerFrames } from './protocol'

const DESCRIPTION = `One websocket carries the lobby events of the streams a client follows: its own user stream
(invitations, sessions, account) and the streams of the rooms it is in, is invited to, or (as an
admin) any room. Every event is written in the transaction of the change it describes and numbered
in its stream; a client that reconnects names the last number it saw and gets exactly what came
after, then live events, each once and in order, on any instance.

1. Connect to the channel's address; the server sends \`hello\`.
2. Send \`auth\` with an access token within REALTIME_AUTH_TIMEOUT (a token never goes in the URL). The server answers \`ready\`.
3. Send \`subscribe\` for \`user\` and each \`room:<id>\`, with \`after\` (and \`epoch\`) from last time.
   The server replays, then answers \`subscribed\`; \`recovered: false\` means refetch over REST.
4. Before the token expires, send \`auth\` again with a fresh one.

A socket ends with one of these close codes:

${(Object.keys(CLOSE) as CloseReason[]).map((reason) => `- ${CLOSE[reason]}: ${CLOSE_MEANINGS[reason]}`).join('\n')}`

const DOMAIN_EVENTS = `With AMQP_URL set, the service publishes its domain events to this RabbitMQ topic exchange
(AMQP_EXCHANGE, durable), exactly as they committed: never one from a transaction that rolled back,
none lost across crashes of the service or restarts of the broker. Each message is persistent, its
\`messageId\` is the event's id, and its routing key is \`<domain>.<event type>\` with a domain among
${DOMAINS.map((domain) => `\`${domain}\``).join(', ')} (such as \`rooms.member_joined\` or \`accounts.account_deleted\`).
AMQP_EVENTS chooses which keys are published (by default \`accounts.*,rooms.*\`).

A stream's events are published in their order. After a crash of the publishing instance a few
may come again, with the same \`messageId\`: a consumer drops an id it has seen (or checks that
\`seq\` is its stream's next). Bind a durable queue with the keys you need.`

/** Removes TypeBox's symbol keys, which JSON would drop anyway, so the document is plain data. */
const plain = (schema: TSchema): object => JSON.parse(JSON.stringify(schema))

/**
 * The frames of one direction as messages, keyed `client.<op>` or `server.<op>`: both directions
 * have a `typing` frame, and they differ (the server's names the user).
 */
const messages = (side: 'client' | 'server', frames: Record<string, TSchema>) =>
  Object.fromEntries(
    Object.entries(frames).map(([op, schema]) => [
      `${side}.${op}`,
      { name: op, title: `${op} (${side === 'client' ? 'client to server' : 'server to client'})`, summary: schema.description, contentType: 'application/json', payload: plain(schema) },
    ]),
  )

/** The /realtime protocol as an AsyncAPI 3.0 document: the channel, the frames both ways, and the close codes. */
export function asyncApiDocument(options: { version: string; apiPrefix: string; exchange: string }) {
  const address = `${options.apiPrefix}/realtime`
  const ref = (key: string) => ({ $ref: `#/channels/realtime/messages/${key}` })
  const clientMessages = messages('client', ClientFrames)
  const serverMessages = messages('server', ServerFrames)
  const channelMessages = (keyed: object) => Object.fromEntries(Object.keys(keyed).map((key) => [key, { $ref: `#/components/messages/${key}` }]))
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Simulator Gateway realtime',
      version: options.version,
      description: DESCRIPTION,
      license: { name: 'MIT' },
    },
    defaultContentType: 'application/json',
    servers: {
      local: { host: 'localhost:3000', protocol: 'ws', description: 'the demo on a laptop (wss behind TLS in production)' },
      broker: {
        host: 'rabbitmq:5672',
        protocol: 'amqp',
        protocolVersion: '0.9.1',
        description: "RabbitMQ as AMQP_URL names it (the compose file's broker profile), where the domain events go",
      },
    },
    channels: {
      realtime: {
        address,
        title: 'Lobby events',
        description: 'GET with a websocket upgrade; JSON text frames both ways.',
        servers: [{ $ref: '#/servers/local' }],
        messages: { ...channelMessages(clientMessages), ...channelMessages(serverMessages) },
      },
      domainEvents: {
        address: options.exchange,
        title: 'Domain events',
        description: DOMAIN_EVENTS,
        servers: [{ $ref: '#/servers/broker' }],
        messages: { domainEvent: { $ref: '#/components/messages/domainEvent' } },
        bindings: {
          amqp: { is: 'routingKey', exchange: { name: options.exchange, type: 'topic', durable: true, autoDelete: false, vhost: '/' }, bindingVersion: '0.3.0' },
        },
      },
    },
    operations: {
      receiveClientFrames: {
        action: 'receive',
        channel: { $ref: '#/channels/realtime' },
        summary: `What clients send: ${Object.keys(ClientFrames).join(', ')}`,
        messages: Object.keys(clientMessages).map(ref),
      },
      sendServerFrames: {
        action: 'send',
        channel: { $ref: '#/channels/realtime' },
        summary: 'What the server sends: hello, ready, events, and the answers to frames',
        messages: Object.keys(serverMessages).map(ref),
      },
      publishDomainEvents: {
        action: 'send',
        channel: { $ref: '#/channels/domainEvents' },
        summary: 'What the service publishes to RabbitMQ: each committed event AMQP_EVENTS allows, persistent, confirmed',
        messages: [{ $ref: '#/channels/domainEvents/messages/domainEvent' }],
        bindings: { amqp: { deliveryMode: 2, mandatory: false, bindingVersion: '0.3.0' } },
      },
    },
    components: {
      messages: {
        ...clientMessages,
        ...serverMessages,
        domainEvent: {
          name: 'domainEvent',
          title: `Domain event (schema_version ${SCHEMA_VERSION})`,
          summary: 'An event of the log as it committed: routing key <domain>.<event type>, messageId = id, content type application/json',
          contentType: 'application/json',
          payload: plain(BrokerMessageSchema),
        },
      },
    },
  }
}
