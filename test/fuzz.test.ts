import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Ajv2020 from 'ajv/dist/2020'
import addFormats from 'ajv-formats'
import fc from 'fast-check'
import { closeTestResources, createTestApp, type Reply, type Session, STORE, type TestApp } from './support/harness'
import { lobby } from './support/lobby'

// Property-based fuzzing of every operation in the service's own OpenAPI document (SECURITY 15).
// Replay a failure with FUZZ_SEED=<seed printed below>; FUZZ_TIME_MS sets the budget per route.

afterAll(closeTestResources)

const SEED = Number(Bun.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
const TIME_PER_ROUTE_MS = Number(Bun.env.FUZZ_TIME_MS ?? 400)
const MAX_BODY_BYTES = 4096
/** What no input the schema accepts may ever get back. */
const REFUSALS_OF_VALID_INPUT = [400, 413, 415, 422]

type Schema = Record<string, any>
interface Operation {
  method: string
  path: string
  body?: Schema
  query: Array<{ name: string; schema: Schema; required: boolean }>
  pathParams: string[]
  success?: Schema
}

let t: TestApp
let doc: any
let validateAgainst: (schema: Schema, value: unknown) => string | undefined
let admin: Session
let member: Session
const idPools: Record<string, string[]> = {}

beforeAll(async () => {
  console.log(`fuzz seed: ${SEED} (replay with FUZZ_SEED=${SEED})`)
  t = await createTestApp({ MAX_BODY_BYTES: String(MAX_BODY_BYTES) })
  doc = (await t.client.get('/swagger/json')).body
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  addFormats(ajv)
  ajv.addSchema({ $id: 'openapi', components: withoutIds(doc.components) })
  validateAgainst = (schema, value) => {
    const validate = ajv.compile({ $ref: `openapi${schema.$ref ?? ''}`, ...(schema.$ref ? {} : { allOf: [withoutIds(schema)] }) })
    return validate(value) ? undefined : ajv.errorsText(validate.errors)
  }

  // Real ids for the path parameters, so that valid requests also reach the happy paths.
  admin = await t.client.loginAdmin()
  member = await t.client.register('fuzz_member')
  const rooms = lobby(t.client)
  const victims = [member, ...(await Promise.all([1, 2, 3].map((i) => t.client.register(`fuzz_victim_${i}`))))]
  idPools.user_id = victims.map((victim) => victim.userId)
  const created = await Promise.all([1, 2, 3].map(() => rooms.createRoom(admin, { max_players: 4 })))
  idPools.room_id = created.map((room) => room.room_id)
  idPools.invite_id = (await Promise.all(created.map((room, i) => rooms.invite(admin, room.room_id, victims[i]!)))).map((invitation) => invitation.invite_id)
})

function withoutIds(value: unknown): any {
  if (Array.isArray(value)) return value.map(withoutIds)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== '$id').map(([key, inner]) => [key, withoutIds(inner)]))
}

function resolve(schema: Schema): Schema {
  if (!schema.$ref) return schema
  return resolve(doc.components.schemas[schema.$ref.split('/').at(-1)])
}

function operations(): Operation[] {
  const found: Operation[] = []
  for (const [path, methods] of Object.entries<Record<string, any>>(doc.paths))
    for (const [method, operation] of Object.entries(methods)) {
      const parameters: any[] = operation.parameters ?? []
      const success = Object.entries<any>(operation.responses ?? {}).find(([status]) => status.startsWith('2'))?.[1]
      found.push({
        method: method.toUpperCase(),
        path,
        body: operation.requestBody?.content?.['application/json']?.schema,
        query: parameters.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema, required: Boolean(p.required) })),
        pathParams: parameters.filter((p) => p.in === 'path').map((p) => p.name),
        success: success?.content?.['application/json']?.schema,
      })
    }
  return found
}

/** Values a JSON schema accepts. Strings stay within maxLength counted in UTF-16 units, as the service counts. */
function valid(schema: Schema): fc.Arbitrary<unknown> {
  const s = resolve(schema)
  if (s.const !== undefined) return fc.constant(s.const)
  if (s.enum) return fc.constantFrom(...s.enum)
  // Outer keywords (such as the bounds of a query integer) hold for every branch.
  if (s.anyOf ?? s.oneOf) {
    const { anyOf, oneOf, ...outer } = s
    return fc.oneof(...(anyOf ?? oneOf).map((branch: Schema) => valid({ ...outer, ...resolve(branch) })))
  }
  switch (s.type) {
    case 'string': {
      const min = s.minLength ?? 0
      const max = Math.min(s.maxLength ?? 40, 60)
      if (s.format === 'uuid') return fc.uuid()
      // Elysia's query integers: a number written as text.
      if (s.format === 'integer' || s.format === 'numeric') return fc.integer({ min: s.minimum ?? 0, max: s.maximum ?? 1_000_000 }).map(String)
      if (s.format === 'date-time') return fc.date({ noInvalidDate: true }).map((date) => date.toISOString())
      const text = s.pattern ? fc.stringMatching(new RegExp(s.pattern)) : fc.string({ unit: 'binary', minLength: min, maxLength: max })
      return text.filter((value) => value.length >= min && value.length <= max)
    }
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1_000_000, max: s.maximum ?? 1_000_000 })
    case 'number':
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true })
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    case 'array':
      return fc.array(valid(s.items ?? {}), { maxLength: 3 })
    case 'object': {
      const properties: Record<string, Schema> = s.properties ?? {}
      return fc.record(Object.fromEntries(Object.entries(properties).map(([key, inner]) => [key, valid(inner)])), {
        requiredKeys: s.required ?? [],
      })
    }
    default:
      return fc.jsonValue()
  }
}

/**
 * Rules a JSON schema cannot state, taken out of the valid inputs: `user_id` in ChangeUserRequest
 * must equal the target's id, and `max_players` must not exceed ROOM_MAX_PLAYERS_LIMIT (64 here).
 */
function withinBusinessRules(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body
  const { user_id: _, ...rest } = body as Record<string, unknown>
  if (typeof rest.max_players === 'number') rest.max_players = Math.min(rest.max_players, 64)
  return rest
}

const oddStrings = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom('', ' ', '\u0000', '\u202e', '😀'.repeat(40), 'x'.repeat(20_000), '../../etc/passwd', "' OR 1=1 --", '%00', '\ud800'),
)
const anyJson = fc.oneof(fc.jsonValue(), oddStrings, fc.constant(null), fc.integer(), fc.double(), fc.boolean())

type Mutated = { body?: string; contentType?: string; path: string; query: string }

/** Requests that break the contract in one way or another. */
function mutated(operation: Operation): fc.Arbitrary<Mutated> {
  const path = fc.record(Object.fromEntries(operation.pathParams.map((name) => [name, fc.oneof(fc.uuid(), oddStrings.filter((value) => value.length < 200))]))).map(
    // A lone surrogate cannot travel in a URL (it still does inside the JSON bodies below).
    (params) => operation.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(params[name]).toWellFormed())),
  )
  const query = fc.oneof(
    fc.constant(''),
    fc.dictionary(fc.oneof(fc.constantFrom(...operation.query.map((param) => param.name), 'limit', 'offset'), fc.string()), oddStrings, { maxKeys: 3 }).map((entries) =>
      new URLSearchParams(entries as Record<string, string>).toString(),
    ),
  )
  const validBody = operation.body ? valid(operation.body) : fc.constant({})
  const body = fc.oneof(
    anyJson.map((value) => JSON.stringify(value)),
    validBody.chain((value) =>
      fc.oneof(
        fc.constant(JSON.stringify(value)),
        anyJson.map((wrong) => JSON.stringify(replaceOneField(value, wrong))),
        fc.constant(JSON.stringify(dropOneField(value))),
        anyJson.map((extra) => JSON.stringify({ ...(value as object), unexpected_field: extra })),
        fc.nat().map((cut) => JSON.stringify(value).slice(0, cut % Math.max(1, JSON.stringify(value).length))),
        fc.constant('x'.repeat(MAX_BODY_BYTES + 1)),
      ),
    ),
  )
  return fc.record({
    path,
    query,
    body: fc.option(body, { nil: undefined }),
    contentType: fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'),
  })
}

function replaceOneField(value: unknown, replacement: unknown): unknown {
  if (value === null || typeof value !== 'object') return replacement
  const keys = Object.keys(value)
  return keys.length === 0 ? replacement : { ...value, [keys[0]!]: replacement }
}

function dropOneField(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  const [, ...rest] = Object.entries(value)
  return Object.fromEntries(rest)
}

function expectEnvelopeOnError(reply: Reply, what: string): void {
  expect({ what, status: reply.status < 500 }).toEqual({ what, status: true })
  if (reply.status < 400) return
  expect({ what, envelope: reply.body }).toEqual({
    what,
    envelope: expect.objectContaining({ success: false, message: expect.any(String), timestamp: expect.any(String), error: expect.any(String) }),
  })
  expect(JSON.stringify(reply.body)).not.toMatch(/node_modules|\.ts:\d|SQLITE|postgres|stack/i)
}

/** Logout and password changes end sessions: those routes get a session of their own each time. */
const REVOKING = new Set(['POST /auth/logout', 'POST /auth/change-password'])

describe(`fuzzing every route on ${STORE} (SECURITY 15)`, () => {
  test('valid input is never refused as invalid, never a 5xx, and 2xx bodies match the declared schema', async () => {
    for (const operation of operations()) {
      const name = `${operation.method} ${operation.path}`
      const params = fc.record(
        Object.fromEntries(operation.pathParams.map((param) => [param, fc.oneof(fc.constantFrom(...(idPools[param] ?? ['x'])), fc.uuid())])),
      )
      const query = fc.record(Object.fromEntries(operation.query.map((param) => [param.name, valid(param.schema)])), {
        requiredKeys: operation.query.filter((param) => param.required).map((param) => param.name),
      })
      const body = operation.body ? valid(operation.body).map(withinBusinessRules) : fc.constant(undefined)
      await fc.assert(
        fc.asyncProperty(params, query, body, fc.boolean(), async (pathValues, queryValues, bodyValue, asAdmin) => {
          const session = REVOKING.has(name) ? await t.client.login('fuzz_member', 'password-123') : asAdmin ? admin : member
          const path = operation.path.replace(/\{(\w+)\}/g, (_, param: string) => encodeURIComponent(String(pathValues[param])))
          const search = new URLSearchParams(Object.entries(queryValues).map(([key, value]): [string, string] => [key, String(value)])).toString()
          const reply = await t.client.call(operation.method, `${path}${search ? `?${search}` : ''}`, { token: session.access, body: bodyValue })
          const what = `${name} ${JSON.stringify({ path, search, bodyValue, status: reply.status, reply: reply.body })}`
          expectEnvelopeOnError(reply, what)
          expect({ what, refused: REFUSALS_OF_VALID_INPUT.includes(reply.status) }).toEqual({ what, refused: false })
          if (reply.status < 300 && operation.success && typeof reply.body === 'object')
            expect({ what, schemaErrors: validateAgainst(operation.success, reply.body) }).toEqual({ what, schemaErrors: undefined })
        }),
        { seed: SEED, numRuns: REVOKING.has(name) ? 5 : 60, interruptAfterTimeLimit: TIME_PER_ROUTE_MS, markInterruptAsFailure: false },
      )
    }
  }, 120_000)

  test('mutated input (wrong types, missing and extra fields, odd Unicode, bad ids, broken JSON, wrong content types, oversize) never gets a 5xx and always the envelope', async () => {
    const tokens = fc.constantFrom<string | undefined>(undefined, 'garbage.token.here', admin.access, member.access)
    for (const operation of operations()) {
      const name = `${operation.method} ${operation.path}`
      await fc.assert(
        fc.asyncProperty(mutated(operation), tokens, async ({ path, query, body, contentType }, token) => {
          const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {}
          const reply = await t.client.call(operation.method, `${path}${query ? `?${query}` : ''}`, { token, body, headers })
          expectEnvelopeOnError(reply, `${name} ${JSON.stringify({ path, query, body: body?.slice(0, 200), contentType, status: reply.status })}`)
        }),
        { seed: SEED, numRuns: 150, interruptAfterTimeLimit: TIME_PER_ROUTE_MS, markInterruptAsFailure: false },
      )
    }
  }, 120_000)
})
