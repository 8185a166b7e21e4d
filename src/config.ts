import { type Static, type TSchema, Type as T } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

const Seconds = (fallback: number, minimum: number, maximum: number, description: string) =>
  T.Integer({ default: fallback, minimum, maximum, description: `${description}, in seconds` })

/** A routing key AMQP_EVENTS may name: `<domain>.<event type>` or `<domain>.*`. */
const ROUTING_KEY = ' *(accounts|rooms|chat|users)\\.([a-z_]+|\\*) *'

const Flag = (fallback: boolean, description: string) => T.Boolean({ default: fallback, description })

/** Every setting the service reads. Defaults here are the documented defaults in README and .env.example. */
export const EnvSchema = T.Object({
  PORT: T.Integer({ default: 3000, minimum: 0, maximum: 65535, description: 'TCP port to listen on' }),
  HOST: T.String({ default: '0.0.0.0', minLength: 1, description: 'interface to bind' }),
  API_PREFIX: T.String({
    default: '',
    pattern: '^(/[A-Za-z0-9._~-]+)*$',
    description: "path prefix for the API routes, such as /api/v1 (empty, or segments starting with '/')",
  }),
  DATABASE_URL: T.String({
    default: '',
    pattern: '^$|^(sqlite|file):|^postgres(ql)?://',
    description: 'empty for ./data/sim-gateway.sqlite, sqlite:<path>, sqlite::memory:, or postgres://user@host:port/db',
  }),
  DATABASE_POOL_SIZE: T.Integer({ default: 10, minimum: 1, maximum: 500, description: 'PostgreSQL connections per instance' }),
  JWT_SECRET: T.Optional(T.String({ minLength: 32, description: 'HMAC key for access tokens' })),
  JWT_ALGORITHM: T.Union([T.Literal('HS256'), T.Literal('HS384'), T.Literal('HS512')], {
    default: 'HS256',
    description: 'JWT signing algorithm',
  }),
  JWT_ISSUER: T.String({ default: 'sim-gateway', minLength: 1, description: 'iss claim of access tokens' }),
  JWT_AUDIENCE: T.String({ default: 'sim-gateway', minLength: 1, description: 'aud claim of access tokens' }),
  ACCESS_TOKEN_TTL: Seconds(900, 10, 86_400, 'access token lifetime'),
  REFRESH_TOKEN_TTL: Seconds(2_592_000, 60, 31_536_000, 'refresh token lifetime'),
  SESSION_MAX_LIFETIME: Seconds(7_776_000, 60, 315_360_000, 'how long a session lasts after its login, however often it is refreshed'),
  MAX_SESSIONS_PER_USER: T.Integer({
    default: 50,
    minimum: 1,
    maximum: 10_000,
    description: 'live sessions one user may hold; a login past it ends their oldest',
  }),
  INVITE_TTL: Seconds(604_800, 60, 31_536_000, 'invitation lifetime'),
  EVENT_RETENTION: Seconds(604_800, 3600, 31_536_000, 'how long lobby events are kept for clients resuming (older ones: refetch over REST)'),
  INVITE_RETENTION: Seconds(2_592_000, 3600, 315_360_000, 'how long accepted, declined and expired invitations stay listed'),
  USER_PURGE_AFTER: Seconds(2_592_000, 60, 315_360_000, 'how long a deleted account can be restored before the purge erases it'),
  ADMIN_USERNAME: T.Optional(T.String({ pattern: '^[A-Za-z0-9_.-]{3,32}$', description: 'first admin, created at start-up if missing' })),
  ADMIN_PASSWORD: T.Optional(T.String({ minLength: 8, maxLength: 128, description: "first admin's password" })),
  SEED_DEMO_DATA: Flag(false, 'fill an empty database with demo users, rooms and invitations'),
  ROOM_MAX_PLAYERS: T.Integer({ default: 8, minimum: 1, maximum: 1000, description: 'default seats per room' }),
  ROOM_MAX_PLAYERS_LIMIT: T.Integer({ default: 64, minimum: 1, maximum: 1000, description: 'largest max_players a room may ask for' }),
  ROOM_QUOTA: T.Integer({ default: 20, minimum: 1, maximum: 100_000, description: 'open rooms one user may own' }),
  ROOM_SEAT_QUOTA: T.Integer({ default: 100, minimum: 1, maximum: 100_000, description: 'open rooms one user may play in at once' }),
  INVITE_PENDING_LIMIT: T.Integer({ default: 100, minimum: 1, maximum: 100_000, description: 'pending invitations one room may have at once' }),
  ROOM_RATE_LIMIT: T.Integer({ default: 10, minimum: 1, maximum: 1_000_000, description: 'rooms one user may create per USER_RATE_WINDOW' }),
  INVITE_RATE_LIMIT: T.Integer({
    default: 30,
    minimum: 1,
    maximum: 1_000_000,
    description: 'invitations one user may send (or try to) per USER_RATE_WINDOW',
  }),
  ACCOUNT_RATE_LIMIT: T.Integer({ default: 10, minimum: 1, maximum: 1_000_000, description: 'changes one user may make to their own account per USER_RATE_WINDOW' }),
  EXPORT_RATE_LIMIT: T.Integer({ default: 3, minimum: 1, maximum: 1_000_000, description: 'exports of their data one user may download per USER_RATE_WINDOW' }),
  BLOCK_QUOTA: T.Integer({ default: 1000, minimum: 1, maximum: 100_000, description: 'users one user may have blocked at once' }),
  BLOCK_RATE_LIMIT: T.Integer({ default: 30, minimum: 1, maximum: 1_000_000, description: 'blocks and unblocks one user may make per USER_RATE_WINDOW' }),
  USER_RATE_WINDOW: Seconds(60, 1, 86_400, 'window of ROOM_RATE_LIMIT, INVITE_RATE_LIMIT, BLOCK_RATE_LIMIT, ACCOUNT_RATE_LIMIT and the QR login limits'),
  QR_LOGIN_TTL: Seconds(120, 30, 900, 'how long a QR login request can be approved on a phone and exchanged by its desktop'),
  // Both under the 30 s a connection may stay idle (Elysia's idleTimeout for Bun), so that an answer always finds its caller.
  QR_LOGIN_WAIT: Seconds(20, 0, 25, "how long POST /auth/qr/token waits for the phone's decision before answering authorization_pending"),
  QR_LOGIN_INTERVAL: Seconds(5, 1, 60, 'least time between two exchanges of one pending QR login request (else slow_down)'),
  OAUTH_PROVIDERS: T.String({
    default: '[]',
    description:
      'sign-in providers as a JSON array, such as [{"id":"yandex","preset":"yandex","client_id":"…","client_secret":"…","redirect_uri":"https://game.example/lobby"}] (README: Signing in with Yandex ID)',
  }),
  OAUTH_STATE_TTL: Seconds(600, 60, 3600, 'how long a sign-in at a provider may take, from its start to its callback'),
  OAUTH_TIMEOUT: Seconds(10, 1, 12, 'how long one call to a sign-in provider may take (a callback makes two)'),
  QR_LOGIN_RATE_LIMIT: T.Integer({ default: 10, minimum: 1, maximum: 1_000_000, description: 'QR login requests one client address may start per USER_RATE_WINDOW' }),
  QR_APPROVAL_RATE_LIMIT: T.Integer({
    default: 20,
    minimum: 1,
    maximum: 1_000_000,
    description: 'QR login requests one user may look at, approve or deny per USER_RATE_WINDOW',
  }),
  PASSWORD_MIN_LENGTH: T.Integer({ default: 8, minimum: 8, maximum: 128, description: 'shortest accepted password' }),
  PASSWORD_MEMORY_COST: T.Integer({ default: 65_536, minimum: 19_456, maximum: 1_048_576, description: 'argon2id memory in KiB' }),
  PASSWORD_TIME_COST: T.Integer({ default: 2, minimum: 2, maximum: 20, description: 'argon2id iterations' }),
  HASH_CONCURRENCY: T.Integer({
    default: navigator.hardwareConcurrency,
    minimum: 1,
    maximum: 256,
    description: 'password hashes allowed to run at once (default: CPU cores)',
  }),
  HASH_QUEUE_LIMIT: T.Integer({
    default: 64,
    minimum: 0,
    maximum: 10_000,
    description: 'password checks allowed to wait for a free hashing slot (then 503)',
  }),
  HASH_QUEUE_PER_CLIENT: T.Integer({
    default: 8,
    minimum: 1,
    maximum: 10_000,
    description: 'password checks one client address may have running or waiting at once (then 429)',
  }),
  LOGIN_MAX_FAILURES: T.Integer({ default: 5, minimum: 1, maximum: 1000, description: 'failed logins per username before lock-out' }),
  LOGIN_MAX_FAILURES_PER_ADDRESS: T.Integer({
    default: 50,
    minimum: 1,
    maximum: 100_000,
    description: 'failed logins per client address before lock-out',
  }),
  LOGIN_WINDOW: Seconds(900, 1, 86_400, 'failure counting window and lock-out duration'),
  AUTH_RATE_LIMIT: T.Integer({
    default: 120,
    minimum: 1,
    maximum: 1_000_000,
    description: 'requests to register, log in, refresh or change a password per client address and AUTH_RATE_WINDOW',
  }),
  AUTH_RATE_WINDOW: Seconds(60, 1, 3600, 'window of AUTH_RATE_LIMIT'),
  TRUST_PROXY: Flag(false, 'take the client address from X-Forwarded-For'),
  CORS_ORIGINS: T.String({ default: '', description: "comma-separated allowed origins, '*' for any, empty for none" }),
  MAX_BODY_BYTES: T.Integer({ default: 65_536, minimum: 1024, maximum: 10_485_760, description: 'largest request body in bytes' }),
  BODY_TIMEOUT: Seconds(10, 1, 300, 'how long a client may take to send a request body'),
  MAX_CONCURRENT_BODIES: T.Integer({
    default: 1000,
    minimum: 1,
    maximum: 1_000_000,
    description: 'request bodies read at once, at most (each holds up to MAX_BODY_BYTES); then 503',
  }),
  MESSAGE_MAX_LENGTH: T.Integer({ default: 2000, minimum: 1, maximum: 10_000, description: 'longest chat message, in characters (NFC)' }),
  MESSAGE_RATE_LIMIT: T.Integer({ default: 20, minimum: 1, maximum: 1_000_000, description: 'chat messages one user may send, edit or delete per MESSAGE_RATE_WINDOW' }),
  MESSAGE_RATE_WINDOW: Seconds(10, 1, 3600, 'window of MESSAGE_RATE_LIMIT'),
  MESSAGE_RETENTION: Seconds(7_776_000, 3600, 315_360_000, 'how long chat messages are kept'),
  REALTIME_AUTH_TIMEOUT: Seconds(5, 1, 60, 'how long a new websocket may take to send its auth frame'),
  REALTIME_IDLE_TIMEOUT: Seconds(60, 10, 960, 'websocket idle timeout; the server pings well before it, so only dead peers reach it'),
  REALTIME_MAX_SOCKETS: T.Integer({ default: 50_000, minimum: 1, maximum: 1_000_000, description: 'open websockets per instance (then closed with 1013)' }),
  REALTIME_MAX_SOCKETS_PER_USER: T.Integer({
    default: 10,
    minimum: 1,
    maximum: 10_000,
    description: 'websockets one user may hold open on one instance (then closed with 4030)',
  }),
  REALTIME_MAX_SOCKETS_PER_ADDRESS: T.Integer({
    default: 256,
    minimum: 1,
    maximum: 1_000_000,
    description: 'websockets one client address (an IPv6 /64) may hold open on one instance, authenticated or not (then 429)',
  }),
  REALTIME_MAX_SUBSCRIPTIONS: T.Integer({ default: 100, minimum: 1, maximum: 100_000, description: 'streams one websocket may subscribe to at once' }),
  REALTIME_MAX_FRAME_BYTES: T.Integer({
    default: 16_384,
    minimum: 1024,
    maximum: 1_048_576,
    description: 'largest frame a client may send, in bytes (then closed with 1009)',
  }),
  REALTIME_MESSAGE_RATE: T.Integer({
    default: 20,
    minimum: 1,
    maximum: 100_000,
    description: 'frames per second a websocket may send, in bursts of as many (then closed with 4029)',
  }),
  REALTIME_PRESENCE_TIMEOUT: Seconds(30, 3, 3600, 'how soon the users of an instance that died stop counting as online (give or take a third)'),
  REALTIME_SLOW_CONSUMER_BYTES: T.Integer({
    default: 1_048_576,
    minimum: 16_384,
    maximum: 268_435_456,
    description: 'bytes waiting to go out to one websocket before it is closed as a slow consumer (4009)',
  }),
  AVATAR_MAX_BYTES: T.Integer({ default: 5_242_880, minimum: 1024, maximum: 20_971_520, description: 'largest avatar file a user may upload, in bytes' }),
  AVATAR_MAX_DIMENSION: T.Integer({
    default: 4096,
    minimum: 64,
    maximum: 16_384,
    description: 'widest or tallest avatar upload, in pixels (read from the header, before decoding: a decompression bomb goes no further)',
  }),
  AVATAR_SIZE: T.Integer({ default: 512, minimum: 32, maximum: 2048, description: 'stored avatars fit in a square of this many pixels (re-encoded as WebP)' }),
  AVATAR_UPLOADS_AT_ONCE: T.Integer({
    default: 16,
    minimum: 1,
    maximum: 10_000,
    description: 'avatar uploads read or waiting to be decoded at once, at most (each holds up to AVATAR_MAX_BYTES); then 503',
  }),
  AVATAR_DIR: T.String({ default: 'data/avatars', minLength: 1, description: 'folder of the avatars when no S3 bucket is set' }),
  S3_ENDPOINT: T.Optional(T.String({ pattern: '^https?://', description: 'S3-compatible store for avatars, such as https://storage.yandexcloud.net (unset: AVATAR_DIR)' })),
  S3_BUCKET: T.Optional(T.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', description: 'bucket of the avatars (with S3_ENDPOINT)' })),
  S3_REGION: T.String({ default: 'us-east-1', minLength: 1, description: 'region the S3 requests are signed for' }),
  S3_ACCESS_KEY_ID: T.Optional(T.String({ minLength: 1, description: 'S3 access key id' })),
  S3_SECRET_ACCESS_KEY: T.Optional(T.String({ minLength: 1, description: 'S3 secret access key' })),
  S3_PUBLIC_URL: T.Optional(
    T.String({ pattern: '^https?://', description: 'where clients read the bucket (or a CDN in front of it); unset: the gateway serves avatars itself' }),
  ),
  LOG_LEVEL: T.Union([T.Literal('debug'), T.Literal('info'), T.Literal('warn'), T.Literal('error'), T.Literal('silent')], {
    default: 'info',
    description: 'least severe log level written',
  }),
  SWAGGER_ENABLED: Flag(true, 'serve the Swagger page and OpenAPI document'),
  METRICS_ENABLED: Flag(true, 'serve Prometheus metrics at /metrics'),
  METRICS_TOKEN: T.Optional(T.String({ minLength: 16, description: 'bearer token a scraper must send to read /metrics (unset: open)' })),
  OTEL_EXPORTER_OTLP_ENDPOINT: T.Optional(
    T.String({ pattern: '^https?://', description: 'OTLP/HTTP collector to send traces to, such as http://collector:4318 (unset: no tracing)' }),
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: T.Optional(
    T.String({ pattern: '^https?://', description: 'full OTLP/HTTP traces URL, when not OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces' }),
  ),
  OTEL_SERVICE_NAME: T.String({ default: 'sim-gateway', minLength: 1, description: 'service.name of the traces' }),
  OTEL_SDK_DISABLED: Flag(false, 'no tracing even when a collector is named (the compose file names its Jaeger by default)'),
  PRINCIPAL_CACHE: Flag(
    false,
    'hold live sessions and their accounts in memory, forgotten as their changes commit: no store read for a known session; on PostgreSQL, a change made on another instance bites there within the notification delay (README: the principal cache)',
  ),
  PRINCIPAL_CACHE_SIZE: T.Integer({ default: 20_000, minimum: 1, maximum: 1_000_000, description: 'sessions the principal cache holds at most per instance (the oldest go first)' }),
  REALTIME_BUS: T.Union([T.Literal('postgres'), T.Literal('nats')], {
    default: 'postgres',
    description:
      'how instances on one PostgreSQL wake each other: postgres (LISTEN/NOTIFY, nothing more to run; every instance hears every event) or nats (NATS_URL; each instance hears only the streams its sockets follow)',
  }),
  NATS_URL: T.String({
    default: 'nats://127.0.0.1:4222',
    pattern: '^(nats|tls)://[^,\\s]+(,(nats|tls)://[^,\\s]+)*$',
    description: 'the NATS servers of REALTIME_BUS=nats, comma-separated, such as nats://user:password@nats:4222',
  }),
  NATS_SUBJECT_PREFIX: T.String({
    default: 'sim_gateway',
    pattern: '^[A-Za-z0-9_-]{1,64}$',
    description: 'the first token of every subject this deployment uses on NATS (deployments sharing a NATS server need different ones)',
  }),
  NATS_LOOK_INTERVAL: Seconds(1, 1, 60, 'how often each instance reads the log for events whose NATS notice never went out (an instance killed between commit and publish); such an event arrives within two'),
  AMQP_URL: T.Optional(
    T.String({ pattern: '^amqps?://', description: 'RabbitMQ to publish domain events to, such as amqp://user:password@rabbitmq:5672 (unset: no relay)' }),
  ),
  AMQP_EXCHANGE: T.String({
    default: 'sim_gateway.events',
    pattern: '^[A-Za-z0-9_.:-]{1,255}$',
    description: 'the durable topic exchange the events go to (declared if missing)',
  }),
  AMQP_EVENTS: T.String({
    default: 'accounts.*,rooms.*',
    // The event types themselves are checked as the relay starts (modules/broker/model.ts knows them).
    pattern: `^${ROUTING_KEY}(,${ROUTING_KEY})*$`,
    description: 'routing keys published, comma-separated: <domain>.<event type> or <domain>.*, domains accounts, rooms, chat, users',
  }),
  AMQP_POLL_INTERVAL: Seconds(2, 1, 300, 'how often the relay reads the log without a notice, and another instance checks whether it must take the relay over'),
  SHUTDOWN_TIMEOUT: Seconds(10, 1, 600, 'how long a shutdown waits for requests in flight'),
  PURGE_INTERVAL: Seconds(3600, 0, 86_400, 'how often ended sessions and stale login counters are deleted (0: never)'),
})

export type Env = Static<typeof EnvSchema>

export type Config = ReturnType<typeof toConfig>

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`)
  }
}

const SECRET_KEYS = new Set(['JWT_SECRET', 'ADMIN_PASSWORD', 'DATABASE_URL', 'METRICS_TOKEN', 'S3_SECRET_ACCESS_KEY', 'OAUTH_PROVIDERS', 'AMQP_URL', 'NATS_URL'])

/** Reads and validates the settings; throws ConfigError naming every bad variable. */
export function loadConfig(source: Record<string, string | undefined> = Bun.env): Config {
  const raw: Record<string, string> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    if (value !== undefined && value !== '') raw[key] = value.trim()
  }
  const env: unknown = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw))
  const problems = [...Value.Errors(EnvSchema, env)].map(({ path, schema, value }) => {
    const key = path.slice(1).split('/')[0] ?? path
    const shown = SECRET_KEYS.has(key) ? '(hidden)' : JSON.stringify(value)
    return `${key}: expected ${expectation(schema)}, got ${shown} (${schema.description})`
  })
  if (problems.length === 0) problems.push(...crossChecks(env as Env))
  if (problems.length > 0) throw new ConfigError(problems)
  return toConfig(env as Env)
}

function expectation(schema: TSchema): string {
  if (schema.type === 'integer') return `an integer from ${schema.minimum} to ${schema.maximum}`
  if (schema.type === 'boolean') return 'true or false (or 1/0)'
  if (Array.isArray(schema.anyOf)) return `one of ${schema.anyOf.map((option: TSchema) => option.const).join(', ')}`
  if (typeof schema.pattern === 'string') return `text matching ${schema.pattern}`
  if (typeof schema.maxLength === 'number') return `${schema.minLength} to ${schema.maxLength} characters`
  if (typeof schema.minLength === 'number') return `at least ${schema.minLength} characters`
  return 'a valid value'
}

function crossChecks(env: Env): string[] {
  const problems: string[] = []
  if ((env.ADMIN_USERNAME === undefined) !== (env.ADMIN_PASSWORD === undefined)) problems.push('ADMIN_USERNAME and ADMIN_PASSWORD must be set together')
  if (env.ROOM_MAX_PLAYERS > env.ROOM_MAX_PLAYERS_LIMIT)
    problems.push(`ROOM_MAX_PLAYERS must not exceed ROOM_MAX_PLAYERS_LIMIT (${env.ROOM_MAX_PLAYERS_LIMIT})`)
  if (env.ADMIN_PASSWORD !== undefined && env.ADMIN_PASSWORD.length < env.PASSWORD_MIN_LENGTH)
    problems.push(`ADMIN_PASSWORD must be at least PASSWORD_MIN_LENGTH (${env.PASSWORD_MIN_LENGTH}) characters`)
  if ((env.S3_ENDPOINT === undefined) !== (env.S3_BUCKET === undefined)) problems.push('S3_ENDPOINT and S3_BUCKET must be set together')
  if ((env.S3_ACCESS_KEY_ID === undefined) !== (env.S3_SECRET_ACCESS_KEY === undefined))
    problems.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together')
  if (env.S3_ENDPOINT === undefined && (env.S3_ACCESS_KEY_ID !== undefined || env.S3_PUBLIC_URL !== undefined))
    problems.push('S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and S3_PUBLIC_URL need S3_ENDPOINT and S3_BUCKET')
  const badOrigin = parseOrigins(env.CORS_ORIGINS).find((origin) => origin !== '*' && !URL.canParse(origin))
  if (badOrigin !== undefined) problems.push(`CORS_ORIGINS must list origins such as https://game.example; got ${JSON.stringify(badOrigin)}`)
  problems.push(...parseProviders(env.OAUTH_PROVIDERS).problems)
  if (env.PRINCIPAL_CACHE && !/^postgres(ql)?:\/\//.test(env.DATABASE_URL))
    problems.push(
      'PRINCIPAL_CACHE needs PostgreSQL (DATABASE_URL=postgres://...): instances sharing a SQLite file could not tell each other what to forget, and there the store read costs microseconds',
    )
  if (env.REALTIME_BUS === 'nats' && !/^postgres(ql)?:\/\//.test(env.DATABASE_URL))
    problems.push('REALTIME_BUS=nats needs PostgreSQL (DATABASE_URL=postgres://...): the bus wakes instances sharing one log, and a SQLite file is one instance\'s own')
  return problems
}

/** A provider of OAUTH_PROVIDERS: a preset (yandex) brings its endpoints; any other standard OAuth 2.0 / OIDC server names them. */
const OAuthProviderEntry = T.Object(
  {
    id: T.String({ pattern: '^[a-z0-9-]{1,32}$', description: 'in the routes: /auth/oauth/<id>/...' }),
    name: T.Optional(T.String({ minLength: 1, maxLength: 64, description: 'shown on the login button' })),
    preset: T.Optional(T.Union([T.Literal('yandex'), T.Literal('oidc')], { description: 'yandex, or oidc (the default): what its answers look like' })),
    client_id: T.String({ minLength: 1 }),
    client_secret: T.String({ minLength: 1 }),
    redirect_uri: T.String({ minLength: 1, description: 'where the provider sends the browser back: the page that finishes the sign-in' }),
    authorize_url: T.Optional(T.String({ minLength: 1 })),
    token_url: T.Optional(T.String({ minLength: 1 })),
    userinfo_url: T.Optional(T.String({ minLength: 1 })),
    scope: T.Optional(T.String()),
  },
  { additionalProperties: false },
)
export type OAuthProviderEntry = Static<typeof OAuthProviderEntry>

const ENDPOINTS = ['authorize_url', 'token_url', 'userinfo_url'] as const

function parseProviders(json: string): { providers: OAuthProviderEntry[]; problems: string[] } {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    return { providers: [], problems: ['OAUTH_PROVIDERS must be a JSON array of providers (see README: Signing in with Yandex ID)'] }
  }
  if (!Array.isArray(parsed)) return { providers: [], problems: ['OAUTH_PROVIDERS must be a JSON array of providers'] }
  const problems = parsed.flatMap((entry, index) => {
    const at = `OAUTH_PROVIDERS[${index}]`
    // The first complaint about each field is the one that says what is wrong with it.
    const wrong = new Map<string, string>()
    for (const { path, message } of Value.Errors(OAuthProviderEntry, entry)) if (!wrong.has(path)) wrong.set(path, `${at}${path.replaceAll('/', '.')}: ${message}`)
    if (wrong.size > 0) return [...wrong.values()]
    const provider = entry as OAuthProviderEntry
    const urls = [['redirect_uri', provider.redirect_uri], ...ENDPOINTS.map((key) => [key, provider[key]])] as const
    return [
      ...urls.filter(([, url]) => url !== undefined && !/^https?:$/.test(URL.parse(url)?.protocol ?? '')).map(([key]) => `${at}.${key}: expected an http(s) URL`),
      ...(provider.preset === 'yandex' ? [] : ENDPOINTS.filter((key) => provider[key] === undefined).map((key) => `${at}.${key}: required without a preset`)),
    ]
  })
  const ids = parsed.map((entry) => (entry as { id?: unknown })?.id)
  const repeated = ids.find((id, index) => ids.indexOf(id) !== index)
  if (repeated !== undefined) problems.push(`OAUTH_PROVIDERS: the id ${JSON.stringify(repeated)} is used twice`)
  return { providers: problems.length === 0 ? (parsed as OAuthProviderEntry[]) : [], problems }
}

function parseOrigins(list: string): string[] {
  return list
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '')
}

/** Where avatars are kept: a bucket when one is named, else a folder. */
function avatarStorage(env: Env) {
  if (env.S3_ENDPOINT === undefined || env.S3_BUCKET === undefined) return { kind: 'local' as const, directory: env.AVATAR_DIR }
  const keys = env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY ? { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY } : {}
  return {
    kind: 's3' as const,
    endpoint: env.S3_ENDPOINT,
    bucket: env.S3_BUCKET,
    region: env.S3_REGION,
    ...keys,
    publicUrl: env.S3_PUBLIC_URL?.replace(/\/$/, ''),
  }
}

/** Tracing, on when a collector is named and OTEL_SDK_DISABLED is not set; its traces URL as the OpenTelemetry environment variables define it. */
function tracingConfig(env: Env): { url: string; serviceName: string } | undefined {
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/$/, '')
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base && `${base}/v1/traces`)
  return url && !env.OTEL_SDK_DISABLED ? { url, serviceName: env.OTEL_SERVICE_NAME } : undefined
}

function toConfig(env: Env) {
  return {
    port: env.PORT,
    host: env.HOST,
    apiPrefix: env.API_PREFIX,
    databaseUrl: env.DATABASE_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    jwt: {
      secret: env.JWT_SECRET,
      algorithm: env.JWT_ALGORITHM,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
    },
    accessTokenTtl: env.ACCESS_TOKEN_TTL,
    refreshTokenTtl: env.REFRESH_TOKEN_TTL,
    sessionMaxLifetime: env.SESSION_MAX_LIFETIME,
    maxSessionsPerUser: env.MAX_SESSIONS_PER_USER,
    inviteTtl: env.INVITE_TTL,
    inviteRetention: env.INVITE_RETENTION,
    userPurgeAfter: env.USER_PURGE_AFTER,
    invitePendingLimit: env.INVITE_PENDING_LIMIT,
    eventRetention: env.EVENT_RETENTION,
    chat: { maxLength: env.MESSAGE_MAX_LENGTH, retention: env.MESSAGE_RETENTION },
    realtime: {
      authTimeout: env.REALTIME_AUTH_TIMEOUT,
      idleTimeout: env.REALTIME_IDLE_TIMEOUT,
      maxSockets: env.REALTIME_MAX_SOCKETS,
      maxSocketsPerUser: env.REALTIME_MAX_SOCKETS_PER_USER,
      maxSocketsPerAddress: env.REALTIME_MAX_SOCKETS_PER_ADDRESS,
      maxSubscriptions: env.REALTIME_MAX_SUBSCRIPTIONS,
      maxFrameBytes: env.REALTIME_MAX_FRAME_BYTES,
      messageRate: env.REALTIME_MESSAGE_RATE,
      slowConsumerBytes: env.REALTIME_SLOW_CONSUMER_BYTES,
      presenceTimeout: env.REALTIME_PRESENCE_TIMEOUT,
    },
    admin: env.ADMIN_USERNAME && env.ADMIN_PASSWORD ? { username: env.ADMIN_USERNAME, password: env.ADMIN_PASSWORD } : undefined,
    seedDemoData: env.SEED_DEMO_DATA,
    rooms: { defaultMaxPlayers: env.ROOM_MAX_PLAYERS, maxPlayersLimit: env.ROOM_MAX_PLAYERS_LIMIT, quota: env.ROOM_QUOTA, seatQuota: env.ROOM_SEAT_QUOTA },
    userRateLimits: {
      rooms: { limit: env.ROOM_RATE_LIMIT, window: env.USER_RATE_WINDOW },
      messages: { limit: env.MESSAGE_RATE_LIMIT, window: env.MESSAGE_RATE_WINDOW },
      invitations: { limit: env.INVITE_RATE_LIMIT, window: env.USER_RATE_WINDOW },
      blocks: { limit: env.BLOCK_RATE_LIMIT, window: env.USER_RATE_WINDOW },
      accountChanges: { limit: env.ACCOUNT_RATE_LIMIT, window: env.USER_RATE_WINDOW },
      exports: { limit: env.EXPORT_RATE_LIMIT, window: env.USER_RATE_WINDOW },
    },
    oauth: { providers: parseProviders(env.OAUTH_PROVIDERS).providers, stateTtl: env.OAUTH_STATE_TTL, timeout: env.OAUTH_TIMEOUT },
    qrLogin: {
      ttl: env.QR_LOGIN_TTL,
      wait: env.QR_LOGIN_WAIT,
      interval: env.QR_LOGIN_INTERVAL,
      starts: { limit: env.QR_LOGIN_RATE_LIMIT, window: env.USER_RATE_WINDOW },
      decisions: { limit: env.QR_APPROVAL_RATE_LIMIT, window: env.USER_RATE_WINDOW },
    },
    blockQuota: env.BLOCK_QUOTA,
    password: {
      minLength: env.PASSWORD_MIN_LENGTH,
      memoryCost: env.PASSWORD_MEMORY_COST,
      timeCost: env.PASSWORD_TIME_COST,
      concurrency: env.HASH_CONCURRENCY,
      queueLimit: env.HASH_QUEUE_LIMIT,
      queueLimitPerClient: env.HASH_QUEUE_PER_CLIENT,
    },
    login: {
      maxFailures: env.LOGIN_MAX_FAILURES,
      maxFailuresPerAddress: env.LOGIN_MAX_FAILURES_PER_ADDRESS,
      window: env.LOGIN_WINDOW,
    },
    authRateLimit: { limit: env.AUTH_RATE_LIMIT, window: env.AUTH_RATE_WINDOW },
    trustProxy: env.TRUST_PROXY,
    corsOrigins: parseOrigins(env.CORS_ORIGINS),
    maxBodyBytes: env.MAX_BODY_BYTES,
    bodyTimeout: env.BODY_TIMEOUT,
    maxConcurrentBodies: env.MAX_CONCURRENT_BODIES,
    avatars: {
      maxBytes: env.AVATAR_MAX_BYTES,
      maxDimension: env.AVATAR_MAX_DIMENSION,
      size: env.AVATAR_SIZE,
      uploadsAtOnce: env.AVATAR_UPLOADS_AT_ONCE,
      storage: avatarStorage(env),
    },
    logLevel: env.LOG_LEVEL,
    swaggerEnabled: env.SWAGGER_ENABLED,
    metricsEnabled: env.METRICS_ENABLED,
    metricsToken: env.METRICS_TOKEN,
    shutdownTimeout: env.SHUTDOWN_TIMEOUT,
    tracing: tracingConfig(env),
    purgeInterval: env.PURGE_INTERVAL,
    bus: env.REALTIME_BUS === 'nats' ? { engine: 'nats' as const, url: env.NATS_URL, prefix: env.NATS_SUBJECT_PREFIX, lookInterval: env.NATS_LOOK_INTERVAL * 1000 } : { engine: 'postgres' as const },
    principalCache: env.PRINCIPAL_CACHE ? { maxEntries: env.PRINCIPAL_CACHE_SIZE } : undefined,
    /** Without a url, no relay runs; the exchange is still what the AsyncAPI document names. */
    broker: { url: env.AMQP_URL, exchange: env.AMQP_EXCHANGE, events: env.AMQP_EVENTS.split(',').map((key) => key.trim()), pollInterval: env.AMQP_POLL_INTERVAL },
  }
}
