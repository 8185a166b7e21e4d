import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { closeTestResources, createTestApp, type TestApp } from './support/harness'

afterAll(closeTestResources)

let t: TestApp
let doc: any
beforeAll(async () => {
  t = await createTestApp()
  doc = (await t.client.get('/swagger/json')).body
})

const PUBLIC = ['POST /auth/registrate', 'POST /auth/login', 'POST /auth/refresh', 'GET /health', 'GET /ready', 'GET /metrics']
const PROTECTED = [
  'POST /auth/logout',
  'GET /auth/me',
  'GET /auth/verify-token',
  'POST /auth/verify-token',
  'POST /auth/change-password',
  'GET /users/me',
  'PUT /users/me',
  'POST /users',
  'GET /users',
  'GET /users/{user_id}',
  'DELETE /users/{user_id}',
  'PUT /users/{user_id}',
  'POST /users/{user_id}/deactivate',
  'POST /users/{user_id}/activate',
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
]

function operations(): Map<string, any> {
  const found = new Map<string, any>()
  for (const [path, methods] of Object.entries<Record<string, any>>(doc.paths))
    for (const [method, operation] of Object.entries(methods)) found.set(`${method.toUpperCase()} ${path}`, operation)
  return found
}

describe('OpenAPI document', () => {
  test('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toStartWith('3.1')
    const result = await new Validator().validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
  })

  test('lists exactly the routes of the service, each tagged by domain', () => {
    const listed = operations()
    expect([...listed.keys()].sort()).toEqual([...PUBLIC, ...PROTECTED].sort())
    for (const [name, operation] of listed) {
      expect({ name, tags: operation.tags }).toEqual({ name, tags: [expect.stringMatching(/^(auth|users|rooms|invites|ops)$/)] })
      expect(operation.summary).toBeString()
    }
  })

  test('protected routes require bearer auth; public ones do not', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' })
    const listed = operations()
    for (const name of PROTECTED) expect({ name, security: listed.get(name).security }).toEqual({ name, security: [{ bearerAuth: [] }] })
    for (const name of PUBLIC) expect({ name, security: listed.get(name).security }).toEqual({ name, security: undefined })
  })

  test('every route documents its success schema and its errors with the envelope', () => {
    for (const [name, operation] of operations()) {
      const statuses = Object.keys(operation.responses)
      expect({ name, success: statuses.some((status) => status.startsWith('2')) }).toEqual({ name, success: true })
      for (const status of statuses.filter((status) => Number(status) >= 400))
        expect(operation.responses[status].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ErrorResponse' })
      if (PROTECTED.includes(name)) expect(statuses).toContain('401')
    }
    for (const model of ['User', 'TokenResponse', 'Token', 'AuthRequest', 'GetAllUsersResponse', 'Room', 'Player', 'Invitation', 'GetAllRoomsResponse', 'GetMyInvitesResponse', 'ErrorResponse', 'SuccessResponse'])
      expect(doc.components.schemas[model]).toBeObject()
    expect(doc.components.schemas.GetAllUsersResponse.properties.total_count).toEqual({ type: 'integer', minimum: 0, description: expect.any(String) })
  })
})

describe('request schemas', () => {
  const BODIES: Record<string, string> = {
    'POST /auth/registrate': 'AuthRequest',
    'POST /auth/login': 'AuthRequest',
    'POST /auth/refresh': 'RefreshTokenRequest',
    'POST /auth/change-password': 'ChangePasswordRequest',
    'PUT /users/me': 'ChangeUserRequest',
    'POST /users': 'UserCreateRequest',
    'PUT /users/{user_id}': 'ChangeUserRequest',
    'POST /rooms': 'CreateRoomRequest',
    'POST /rooms/{room_id}/invite': 'InviteToRoomRequest',
    'POST /rooms/{room_id}/join': 'JoinToRoomRequest',
  }

  test('every route that takes a body documents it as JSON with its named schema; no other route has one', () => {
    for (const [name, operation] of operations()) {
      const schema = operation.requestBody?.content?.['application/json']?.schema
      expect({ name, schema }).toEqual({ name, schema: BODIES[name] ? { $ref: `#/components/schemas/${BODIES[name]}` } : undefined })
    }
  })

  test('list filters and pagination are optional query parameters', () => {
    for (const name of ['GET /users', 'GET /rooms', 'GET /rooms/my', 'GET /invites/my', 'GET /invites/sent']) {
      const parameters: Array<{ name: string; in: string; required: boolean }> = operations().get(name).parameters
      expect({ name, required: parameters.filter((parameter) => parameter.required).map((parameter) => parameter.name) }).toEqual({ name, required: [] })
      expect(parameters.map((parameter) => parameter.name)).toEqual(expect.arrayContaining(['limit', 'offset']))
    }
  })
})

describe('Swagger page', () => {
  test('is served with its assets from the service itself, no CDN', async () => {
    const page = await t.app.handle(new Request('http://localhost/swagger'))
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).not.toMatch(/unpkg|jsdelivr|cdn\./)
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
    expect(assets.sort()).toEqual(['/swagger/assets/swagger-ui-bundle.js', '/swagger/assets/swagger-ui.css'])
    for (const asset of assets) {
      const response = await t.app.handle(new Request(`http://localhost${asset}`))
      expect(response.status).toBe(200)
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(10_000)
    }
    expect(html).toContain('swagger/json')
  })

  test('SWAGGER_ENABLED=false removes the page and the document', async () => {
    const off = await createTestApp({ SWAGGER_ENABLED: 'false' })
    expect((await off.client.get('/swagger')).status).toBe(404)
    expect((await off.client.get('/swagger/json')).status).toBe(404)
  })
})
