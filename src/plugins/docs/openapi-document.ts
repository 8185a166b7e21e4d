/**
 * Finishes the OpenAPI document that @elysiajs/openapi generates, so that JSON Schema 2020-12
 * validators, Redocly, Swagger UI and client generators all read it alike: no `$id` in schemas
 * (2020-12 forbids a fragment there, and Swagger UI then resolves no `$ref`), every status a route
 * can answer with its error codes, the headers that matter, an example for every body, and query
 * integers as integers.
 */

/** The document is plain JSON, walked generically. */
type Json = any

/** What a route says of its answers beyond the schemas (Elysia keeps `detail.responses` on the route). */
export interface RouteNotes {
  method: string
  /** Elysia's form: `/rooms/:room_id`. */
  path: string
  responses?: Record<string, { description?: string; headers?: Record<string, Json> }>
}

/** Each status with the codes it carries in this API; a route's own note replaces it where it says more. */
const ERROR_STATUSES: Record<string, { code: string; description: string }> = {
  400: { code: 'bad_request', description: '`bad_request`: the body is not valid JSON or nests deeper than 32 levels, or an id in the path is not a UUID.' },
  401: {
    code: 'unauthorized',
    description: '`unauthorized`: no access token, or one that is invalid, expired or whose session has ended. `WWW-Authenticate` says which.',
  },
  403: { code: 'forbidden', description: '`account_inactive`: the account is deactivated. `forbidden`: the caller may not do this.' },
  404: { code: 'not_found', description: '`not_found`: there is no such thing, or the caller may not know it exists.' },
  408: { code: 'request_timeout', description: '`request_timeout`: the body did not arrive within `BODY_TIMEOUT` seconds.' },
  409: { code: 'conflict', description: '`conflict`: the change does not fit the current state.' },
  413: { code: 'payload_too_large', description: '`payload_too_large`: the body is larger than `MAX_BODY_BYTES`.' },
  415: { code: 'unsupported_media_type', description: '`unsupported_media_type`: a body that is not `application/json`.' },
  422: {
    code: 'validation_error',
    description: '`validation_error`: a field is missing, unknown, or outside its limits; `details` names each field and what it must be.',
  },
  429: { code: 'rate_limited', description: '`rate_limited`: too many attempts; try again after `Retry-After` seconds.' },
  502: { code: 'bad_gateway', description: '`bad_gateway`: a sign-in provider did not answer in `OAUTH_TIMEOUT`, or answered nonsense.' },
  503: { code: 'unavailable', description: '`unavailable`: the service cannot answer now; try again after `Retry-After` seconds where given.' },
}

const HEADERS: Record<string, Json> = {
  RequestId: {
    description: 'The id of this request in the service log: the caller’s own `X-Request-Id` when sane, else a new one.',
    schema: { type: 'string', examples: ['5f1c2a9e-1k'] },
  },
  RetryAfter: { description: 'Seconds to wait before trying again.', schema: { type: 'integer', minimum: 1, examples: [30] } },
  WWWAuthenticate: {
    description: 'The Bearer challenge (RFC 6750), with `error="invalid_token"` when a token was sent but refused.',
    schema: { type: 'string', examples: ['Bearer realm="sim-gateway", error="invalid_token"'] },
  },
}

const EXAMPLE_UUID = '01936b2e-7c4a-7f3e-9b1d-2f5c8a9e4d10'
const EXAMPLE_TIME = '2026-11-22T13:04:05.123Z'

export function finishDocument(generated: Json, routes: RouteNotes[], servers: Array<{ url: string; description: string }>): Json {
  const document = withoutInternals(generated)
  const schemas: Record<string, Json> = document.components.schemas
  const notes = new Map(routes.map((route) => [`${route.method.toLowerCase()} ${route.path.replace(/:(\w+)/g, '{$1}')}`, route.responses ?? {}]))
  for (const [path, operations] of Object.entries<Record<string, Json>>(document.paths))
    for (const [method, operation] of Object.entries(operations)) {
      const secured = Array.isArray(operation.security) && operation.security.length > 0
      if (!secured) operation.security = []
      for (const parameter of operation.parameters ?? []) {
        parameter.schema = asPlainInteger(parameter.schema)
        // Swagger UI pre-fills a path parameter from the parameter's own example, not its schema's: an id of the demo data.
        if (parameter.in === 'path' && parameter.schema?.examples?.length) parameter.example ??= parameter.schema.examples[0]
      }
      const responses: Record<string, Json> = (operation.responses ??= {})
      // Only routes that take a body read one (plugins/security.ts).
      const implied = [...(operation.requestBody ? ['400', '408', '413', '415', '422', '503'] : []), ...(secured ? ['401', '403'] : [])]
      for (const status of implied) responses[status] ??= { content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } }
      const own = notes.get(`${method} ${path}`) ?? {}
      for (const [status, response] of Object.entries(responses)) {
        const error = ERROR_STATUSES[status]
        const note = own[status]
        response.description = note?.description ?? error?.description ?? operation.summary ?? 'OK'
        response.headers = {
          'X-Request-Id': { $ref: '#/components/headers/RequestId' },
          ...(status === '429' || status === '503' ? { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } : {}),
          ...(status === '401' ? { 'WWW-Authenticate': { $ref: '#/components/headers/WWWAuthenticate' } } : {}),
          ...note?.headers,
        }
        const json = response.content?.['application/json']
        if (json)
          json.example = error
            ? { success: false, message: firstSentence(response.description), timestamp: EXAMPLE_TIME, error: codeNamed(response.description) ?? error.code }
            : example(json.schema, schemas)
      }
      const body = operation.requestBody?.content?.['application/json']
      if (body) body.example = example(body.schema, schemas)
    }
  document.components.headers = HEADERS
  document.components.schemas = reachable(document, schemas)
  document.servers = servers
  document.info.license = { name: 'MIT', identifier: 'MIT' }
  return document
}

/** Elysia's query integers accept a numeric string too; to a client they are integers. */
function asPlainInteger(schema: Json): Json {
  const integer = schema?.anyOf?.find((branch: Json) => branch.type === 'integer')
  if (!integer) return schema
  const { anyOf: _, ...outer } = schema
  return { ...outer, ...integer }
}

/** A value the schema accepts, built from its `examples`, defaults and formats. */
function example(schema: Json, schemas: Record<string, Json>): Json {
  if (schema?.$ref) return example(schemas[schema.$ref.split('/').at(-1)], schemas)
  if (schema?.examples?.length) return schema.examples[0]
  if (schema?.const !== undefined) return schema.const
  if (schema?.enum?.length) return schema.enum[0]
  if (schema?.default !== undefined) return schema.default
  const branches = schema?.anyOf ?? schema?.oneOf
  if (branches) return example(branches.find((branch: Json) => branch.type !== 'null') ?? branches[0], schemas)
  switch (schema?.type) {
    case 'object': {
      const required = new Set<string>(schema.required ?? [])
      const entries = Object.entries<Json>(schema.properties ?? {}).filter(([key, property]) => required.has(key) || hasExample(property, schemas))
      return Object.fromEntries(entries.map(([key, property]) => [key, example(property, schemas)]))
    }
    case 'array':
      return [example(schema.items, schemas)]
    case 'string':
      return schema.format === 'uuid' ? EXAMPLE_UUID : schema.format === 'date-time' ? EXAMPLE_TIME : 'string'
    case 'integer':
    case 'number':
      return schema.minimum ?? 0
    case 'boolean':
      return true
    default:
      return null
  }
}

function hasExample(schema: Json, schemas: Record<string, Json>): boolean {
  if (schema?.$ref) return hasExample(schemas[schema.$ref.split('/').at(-1)], schemas)
  return Boolean(schema?.examples?.length)
}

/** Only the components some operation reaches, directly or through other components. */
function reachable(document: Json, schemas: Record<string, Json>): Record<string, Json> {
  const used = new Set<string>()
  const visit = (value: Json) => {
    if (Array.isArray(value)) return value.forEach(visit)
    if (value === null || typeof value !== 'object') return
    const ref = value.$ref
    if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
      const name = ref.slice('#/components/schemas/'.length)
      if (!used.has(name)) {
        used.add(name)
        visit(schemas[name])
      }
    }
    Object.values(value).forEach(visit)
  }
  visit(document.paths)
  return Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)))
}

/**
 * The schemas without what only the service reads: `$id` (Swagger UI would resolve no $ref by it)
 * and a validation message (`error`, a string; a property named error is a schema, and stays).
 */
function withoutInternals(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutInternals)
  if (value === null || typeof value !== 'object') return value
  const internal = (key: string, inner: Json) => key === '$id' || (key === 'error' && typeof inner === 'string')
  return Object.fromEntries(Object.entries(value).flatMap(([key, inner]) => (internal(key, inner) ? [] : [[key, withoutInternals(inner)]])))
}

/** The first error code a description names, as in "`invalid_credentials`: ...". */
function codeNamed(description: string): string | undefined {
  return /^`([a-z_]+)`/.exec(description)?.[1]
}

function firstSentence(description: string): string {
  const [first] = description.replace(/`[a-z_]+`: /, '').split('. ')
  return (first ?? description).replace(/\.$/, '')
}
