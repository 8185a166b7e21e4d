import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import { createConfig, lintFromString } from '@redocly/openapi-core'
import { Validator } from '@seriousme/openapi-schema-validator'
import Ajv2020 from 'ajv/dist/2020'
import addFormats from 'ajv-formats'
import { closeTestResources, createTestApp, type TestApp } from '../support/harness'

afterAll(closeTestResources)

let t: TestApp
let doc: any
beforeAll(async () => {
  t = await createTestApp()
  doc = (await t.client.get('/swagger/json')).body
})

const PUBLIC = [
  'POST /auth/registrate',
  'POST /auth/login',
  'POST /auth/refresh',
  'POST /auth/qr',
  'POST /auth/qr/token',
  'GET /auth/oauth/providers',
  'POST /auth/oauth/{provider}/start',
  'POST /auth/oauth/{provider}/callback',
  'GET /health',
  'GET /ready',
  'GET /metrics',
  'GET /avatars/{user_id}/{file}',
]
const PROTECTED = [
  'POST /auth/oauth/{provider}/link',
  'POST /auth/oauth/{provider}/link/callback',
  'GET /auth/identities',
  'DELETE /auth/identities/{identity_id}',
  'POST /auth/qr/inspect',
  'POST /auth/qr/approve',
  'POST /auth/qr/deny',
  'POST /auth/logout',
  'GET /auth/me',
  'GET /auth/verify-token',
  'POST /auth/verify-token',
  'POST /auth/change-password',
  'GET /users/me',
  'PUT /users/me',
  'DELETE /users/me',
  'GET /users/me/export',
  'PUT /users/me/avatar',
  'DELETE /users/me/avatar',
  'DELETE /users/{user_id}/avatar',
  'GET /users/me/linked-accounts',
  'POST /users/me/linked-accounts',
  'PUT /users/me/linked-accounts/{linked_account_id}',
  'DELETE /users/me/linked-accounts/{linked_account_id}',
  'GET /users/{user_id}/linked-accounts',
  'POST /users/{user_id}/linked-accounts',
  'PUT /users/{user_id}/linked-accounts/{linked_account_id}',
  'DELETE /users/{user_id}/linked-accounts/{linked_account_id}',
  'POST /users',
  'GET /users',
  'GET /users/{user_id}',
  'DELETE /users/{user_id}',
  'PUT /users/{user_id}',
  'POST /users/{user_id}/deactivate',
  'POST /users/{user_id}/activate',
  'POST /users/{user_id}/restore',
  'GET /rooms',
  'POST /rooms',
  'GET /rooms/my',
  'POST /rooms/my',
  'GET /rooms/{room_id}',
  'POST /rooms/{room_id}',
  'POST /rooms/{room_id}/invite',
  'POST /rooms/{room_id}/join',
  'DELETE /rooms/{room_id}/members/{user_id}',
  'DELETE /rooms/{room_id}/members/me',
  'POST /rooms/{room_id}/close',
  'GET /invites/my',
  'GET /invites/sent',
  'POST /invites/{invite_id}/decline',
  'DELETE /invites/{invite_id}',
  'GET /rooms/{room_id}/messages',
  'POST /rooms/{room_id}/messages',
  'PATCH /rooms/{room_id}/messages/{message_id}',
  'DELETE /rooms/{room_id}/messages/{message_id}',
  'GET /dms',
  'GET /dms/{user_id}/messages',
  'POST /dms/{user_id}/messages',
  'POST /dms/{user_id}/read',
  'GET /blocks',
  'PUT /blocks/{user_id}',
  'DELETE /blocks/{user_id}',
]

function operations(): Map<string, any> {
  const found = new Map<string, any>()
  for (const [path, methods] of Object.entries<Record<string, any>>(doc.paths))
    for (const [method, operation] of Object.entries(methods)) found.set(`${method.toUpperCase()} ${path}`, operation)
  return found
}

describe('OpenAPI document', () => {
  test('is a valid OpenAPI 3.1 document to three validators: the 3.1 schema, swagger-parser and Redocly (recommended rules)', async () => {
    expect(doc.openapi).toStartWith('3.1')
    const result = await new Validator().validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    await SwaggerParser.validate(structuredClone(doc))
    const problems = await lintFromString({
      source: JSON.stringify(doc),
      absoluteRef: '/swagger/json',
      config: await createConfig({ extends: ['recommended'] }),
    })
    expect(problems.filter((problem) => problem.severity === 'error').map((problem) => `${problem.ruleId}: ${problem.message}`)).toEqual([])
  })

  test('every schema is valid JSON Schema 2020-12, compiles in strict mode, and carries no $id (Swagger UI would resolve no $ref)', () => {
    expect(JSON.stringify(doc)).not.toContain('"$id"')
    // OpenAPI's own word, and ours: x-nfc-max-length, free text's limit counted after NFC (a specification extension).
    const ajv = new Ajv2020({ strict: true, allErrors: true, keywords: ['example', 'x-nfc-max-length'] })
    addFormats(ajv)
    const local = (schema: unknown) => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"openapi#/$defs/'))
    ajv.addSchema({ $id: 'openapi', $defs: local(doc.components.schemas) })
    const schemas: Array<[string, unknown]> = [
      ...Object.entries<unknown>(doc.components.schemas).map(([name, schema]): [string, unknown] => [`#/components/schemas/${name}`, schema]),
      ...[...operations()].flatMap(([name, operation]) =>
        (operation.parameters ?? []).map((parameter: any): [string, unknown] => [`${name} ${parameter.name}`, parameter.schema]),
      ),
    ]
    for (const [name, schema] of schemas) {
      expect({ name, valid: ajv.validateSchema(schema as object) }).toEqual({ name, valid: true })
      expect(() => ajv.compile(local(schema))).not.toThrow()
    }
  })

  test('a person can act on it: descriptions everywhere, error codes named per status, examples that match their schemas', () => {
    const ajv = new Ajv2020({ strict: false })
    addFormats(ajv)
    ajv.addSchema({ $id: 'openapi', components: { schemas: doc.components.schemas } })
    const matches = (schema: unknown, value: unknown) =>
      ajv.validate(JSON.parse(JSON.stringify(schema).replaceAll('"#/components', '"openapi#/components')), value) ? 'ok' : ajv.errorsText()
    for (const [name, operation] of operations()) {
      expect({ name, description: typeof operation.description }).toEqual({ name, description: 'string' })
      const body = operation.requestBody?.content?.['application/json']
      if (body) expect({ name, example: matches(body.schema, body.example) }).toEqual({ name, example: 'ok' })
      for (const [status, response] of Object.entries<any>(operation.responses)) {
        const what = `${name} ${status}`
        expect({ what, description: response.description }).toEqual({ what, description: expect.not.stringMatching(/^Response for status/) })
        expect(response.headers['X-Request-Id']).toEqual({ $ref: '#/components/headers/RequestId' })
        const json = response.content?.['application/json']
        if (json) expect({ what, example: matches(json.schema, json.example) }).toEqual({ what, example: 'ok' })
        if (Number(status) >= 400) {
          expect({ what, names: /`[a-z_]+`/.test(response.description) }).toEqual({ what, names: true })
          expect(response.description).toContain(`\`${json.example.error}\``)
        }
        if (status === '429' || status === '503') expect(response.headers['Retry-After']).toBeObject()
        if (status === '401') expect(response.headers['WWW-Authenticate']).toBeObject()
      }
    }
    for (const method of ['get', 'post'])
      expect(Object.keys(doc.paths['/auth/verify-token'][method].responses['200'].headers)).toEqual(['X-Request-Id', 'X-User-Id', 'X-User-Role'])
    expect(doc.servers).toEqual([{ url: '/', description: expect.any(String) }])
    expect(doc.info.license.name).toBe('MIT')
  })

  test("every path parameter's example names the demo data: each operation, tried as pre-filled by the demo admin (or a player, for a seat of their own) on a fresh demo database, finds what it names", async () => {
    // Exceptions, each for a reason: no sign-in provider is configured by default, so the demo data has no
    // provider and no identity at one; an avatar's file name carries its upload's random nonce.
    const withoutDemoExample = ['/auth/oauth/{provider}', '/auth/identities/{identity_id}', '/avatars/{user_id}/{file}']
    const tried = [...operations()].filter(([name]) => name.includes('{') && !withoutDemoExample.some((prefix) => name.split(' ')[1]!.startsWith(prefix)))
    expect(tried.length).toBeGreaterThan(30)
    const answers: Array<{ name: string; status: number; error?: string }> = []
    for (const [name, operation] of tried) {
      const [method, path] = name.split(' ') as [string, string]
      const demo = await createTestApp({ SEED_DEMO_DATA: 'true' })
      // Leaving acts on one's own seat, and the demo admin has none: alice leaves instead.
      const username = path.endsWith('/members/me') ? 'alice' : 'demo_admin'
      const token = (await demo.client.post('/auth/login', { username, password: 'demo-password' })).body.access_token.token
      const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => operation.parameters.find((p: any) => p.in === 'path' && p.name === name).example)
      const body = operation.requestBody?.content?.['application/json']?.example
      const reply = await demo.client.call(method, filled, { token, body })
      answers.push({ name, status: reply.status, ...(reply.status === 404 && { error: reply.body.error }) })
      await demo.close()
    }
    expect(answers.filter(({ status }) => status === 404 || status === 422 || status >= 500)).toEqual([])
  }, 300_000)

  test('every route declares the statuses its body, its guard and its limits can give', () => {
    for (const [name, operation] of operations()) {
      const statuses = Object.keys(operation.responses)
      if (operation.requestBody) expect({ name, statuses }).toEqual({ name, statuses: expect.arrayContaining(['400', '408', '413', '415', '422', '503']) })
    }
    const limited = [
      'POST /auth/oauth/{provider}/start',
      'POST /auth/oauth/{provider}/callback',
      'POST /auth/qr',
      'POST /auth/qr/token',
      'POST /auth/qr/inspect',
      'POST /auth/registrate',
      'POST /auth/login',
      'POST /auth/refresh',
      'POST /auth/change-password',
      'POST /users',
      'POST /rooms',
      'POST /rooms/{room_id}/invite',
    ]
    for (const name of limited)
      expect({ name, statuses: Object.keys(operations().get(name).responses) }).toEqual({ name, statuses: expect.arrayContaining(['429']) })
    for (const name of ['POST /auth/registrate', 'POST /auth/login', 'POST /auth/change-password', 'POST /users'])
      expect({ name, statuses: Object.keys(operations().get(name).responses) }).toEqual({ name, statuses: expect.arrayContaining(['503']) })
  })

  test('lists exactly the routes of the service, each tagged by domain', () => {
    const listed = operations()
    expect([...listed.keys()].sort()).toEqual([...PUBLIC, ...PROTECTED].sort())
    for (const [name, operation] of listed) {
      expect({ name, tags: operation.tags }).toEqual({ name, tags: [expect.stringMatching(/^(auth|users|rooms|invites|chat|dms|ops)$/)] })
      expect(operation.summary).toBeString()
    }
  })

  test('protected routes require bearer auth; public ones do not', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' })
    const listed = operations()
    for (const name of PROTECTED) expect({ name, security: listed.get(name).security }).toEqual({ name, security: [{ bearerAuth: [] }] })
    for (const name of PUBLIC) expect({ name, security: listed.get(name).security }).toEqual({ name, security: [] })
  })

  test('every route documents its success schema and its errors with the envelope', () => {
    for (const [name, operation] of operations()) {
      const statuses = Object.keys(operation.responses)
      expect({ name, success: statuses.some((status) => status.startsWith('2')) }).toEqual({ name, success: true })
      for (const status of statuses.filter((status) => Number(status) >= 400))
        expect(operation.responses[status].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ErrorResponse' })
      if (PROTECTED.includes(name)) expect(statuses).toContain('401')
    }
    for (const model of [
      'User',
      'TokenResponse',
      'AccessToken',
      'RefreshToken',
      'AuthRequest',
      'GetAllUsersResponse',
      'Room',
      'Player',
      'Invitation',
      'GetAllRoomsResponse',
      'GetMyInvitesResponse',
      'ErrorResponse',
      'SuccessResponse',
    ])
      expect(doc.components.schemas[model]).toBeObject()
    expect(doc.components.schemas.GetAllUsersResponse.properties.total_count).toEqual({ type: 'integer', minimum: 0, description: expect.any(String) })
  })

  test("the reasons of a 403 or 409 are listed alike in the document and the README's table, and each is given by some refusal", async () => {
    const documented: string[] = doc.components.schemas.ErrorResponse.properties.reason.enum
    const readme = await Bun.file('README.md').text()
    const tabled = [...readme.matchAll(/^\| `([a-z_]+)` \| (?:403|409) \|/gm)].map((match) => match[1])
    expect(tabled).toEqual(documented)
    const sources = await Promise.all([...new Bun.Glob('src/**/*.ts').scanSync()].map((path) => Bun.file(path).text()))
    const given = (reason: string) => sources.some((source) => new RegExp(`(?:forbidden|conflict|refuse)\\([^)]*'${reason}'`).test(source))
    expect(documented.filter((reason) => !given(reason))).toEqual([])
  })
})

describe('request schemas', () => {
  const BODIES: Record<string, string> = {
    'POST /auth/registrate': 'RegisterRequest',
    'POST /auth/login': 'AuthRequest',
    'POST /auth/refresh': 'RefreshTokenRequest',
    'POST /auth/change-password': 'ChangePasswordRequest',
    'POST /auth/qr': 'QrLoginStartRequest',
    'POST /auth/oauth/{provider}/callback': 'OAuthCallback',
    'POST /auth/oauth/{provider}/link/callback': 'OAuthCallback',
    'POST /auth/qr/token': 'QrTokenRequest',
    'POST /auth/qr/inspect': 'QrCode',
    'POST /auth/qr/approve': 'QrCode',
    'POST /auth/qr/deny': 'QrCode',
    'PUT /users/me': 'ChangeUserRequest',
    'DELETE /users/me': 'DeleteMeRequest',
    'POST /users/me/linked-accounts': 'LinkAccountRequest',
    'PUT /users/me/linked-accounts/{linked_account_id}': 'ChangeLinkRequest',
    'POST /users/{user_id}/linked-accounts': 'LinkAccountRequest',
    'PUT /users/{user_id}/linked-accounts/{linked_account_id}': 'ChangeLinkRequest',
    'POST /users': 'UserCreateRequest',
    'PUT /users/{user_id}': 'ChangeUserRequest',
    'POST /rooms': 'CreateRoomRequest',
    'POST /rooms/{room_id}/invite': 'InviteToRoomRequest',
    'POST /rooms/{room_id}/join': 'JoinToRoomRequest',
    'POST /rooms/{room_id}/messages': 'PostMessageRequest',
    'PATCH /rooms/{room_id}/messages/{message_id}': 'EditMessageRequest',
    'POST /dms/{user_id}/messages': 'PostDirectMessageRequest',
    'POST /dms/{user_id}/read': 'ReadMarkerRequest',
  }

  test('every route that takes a body documents it as JSON with its named schema, the avatar upload as a form with a file; no other route has one', () => {
    for (const [name, operation] of operations()) {
      const schema = operation.requestBody?.content?.['application/json']?.schema
      expect({ name, schema }).toEqual({ name, schema: BODIES[name] ? { $ref: `#/components/schemas/${BODIES[name]}` } : undefined })
    }
    const upload = operations().get('PUT /users/me/avatar').requestBody
    expect(Object.keys(upload.content)).toEqual(['multipart/form-data'])
    expect(upload.content['multipart/form-data'].schema).toEqual({ $ref: '#/components/schemas/AvatarUpload' })
    const form = doc.components.schemas.AvatarUpload
    expect(form.required).toEqual(['avatar_file'])
    expect(form.properties.avatar_file).toMatchObject({ type: 'string', format: 'binary' })
  })

  test('list filters and pagination are optional query parameters; limit and offset are plain bounded integers', () => {
    for (const name of ['GET /users', 'GET /rooms', 'GET /rooms/my', 'POST /rooms/my', 'GET /invites/my', 'GET /invites/sent']) {
      const parameters: Array<{ name: string; in: string; required: boolean; schema: any }> = operations().get(name).parameters
      expect({ name, required: parameters.filter((parameter) => parameter.required).map((parameter) => parameter.name) }).toEqual({ name, required: [] })
      const byName = Object.fromEntries(parameters.map((parameter) => [parameter.name, parameter.schema]))
      expect(byName.limit).toEqual({ type: 'integer', minimum: 1, maximum: 200, default: 50, description: expect.any(String) })
      expect(byName.offset).toEqual({ type: 'integer', minimum: 0, maximum: 1_000_000, default: 0, description: expect.any(String) })
    }
  })

  test('the refresh_token a login answers is exactly what POST /auth/refresh takes', () => {
    const refreshToken = doc.components.schemas.RefreshToken
    expect(refreshToken.properties.token_type).toEqual({ const: 'refresh', type: 'string' })
    const accepted = doc.components.schemas.RefreshTokenRequest.properties.refresh_token.anyOf[1]
    expect(accepted.properties.token_type).toEqual(refreshToken.properties.token_type)
    expect(Object.keys(accepted.properties).sort()).toEqual(Object.keys(refreshToken.properties).sort())
  })
})

describe('Swagger page', () => {
  test('is served with its assets from the service itself, no CDN', async () => {
    const page = await t.app.handle(new Request('http://localhost/swagger'))
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).not.toMatch(/unpkg|jsdelivr|cdn\./)
    const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((match) => match[1]!)
    expect(assets.sort()).toEqual(['/swagger/assets/swagger-ui-bundle.js', '/swagger/assets/swagger-ui.css', '/swagger/assets/swagger.css', '/swagger/assets/swagger.js'])
    // Swagger UI's own assets, and the page's script, which points it at the document.
    let script = ''
    for (const asset of assets) {
      const response = await t.app.handle(new Request(`http://localhost${asset}`))
      expect(response.status).toBe(200)
      const text = await response.text()
      if (asset.includes('swagger-ui')) expect(text.length).toBeGreaterThan(10_000)
      if (asset === '/swagger/assets/swagger.js') script = text
    }
    expect(script).toContain('/swagger/json')
    expect(html).not.toMatch(/<script>|<style>/)
  })

  test('SWAGGER_ENABLED=false removes both pages, both documents, and the lobby page’s links to them', async () => {
    const off = await createTestApp({ SWAGGER_ENABLED: 'false' })
    for (const path of ['/swagger', '/swagger/json', '/asyncapi', '/asyncapi/json']) expect({ path, status: (await off.client.get(path)).status }).toEqual({ path, status: 404 })
    const lobby = await off.client.get('/lobby')
    expect(lobby.status).toBe(200)
    expect(lobby.body).not.toContain('href="/swagger"')
    const on = await createTestApp()
    expect((await on.client.get('/lobby')).body).toContain('href="/asyncapi"')
  })
})
