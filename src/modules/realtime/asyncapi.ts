import type { TSchema } from '@sinclair/typebox'
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
export function asyncApiDocument(options: { version: string; apiPrefix: string }) {
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
    },
    channels: {
      realtime: {
        address,
        title: 'Lobby events',
        description: 'GET with a websocket upgrade; JSON text frames both ways.',
        messages: { ...channelMessages(clientMessages), ...channelMessages(serverMessages) },
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
    },
    components: {
      messages: { ...clientMessages, ...serverMessages },
    },
  }
}
