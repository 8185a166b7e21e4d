import { afterAll, describe, expect, test } from 'bun:test'
import { createGatewayClient, type Tokens } from '../../client/src'
import { closeTestResources, STORE, startTestServer } from '../support/harness'

// client/: the typed client the front end uses, against a live instance.

type FetchInput = Parameters<typeof fetch>[0]

afterAll(closeTestResources)

describe(`the typed client (client/) on ${STORE}`, () => {
  test('registers, logs in, and calls typed routes with the bearer token; logout forgets the tokens', async () => {
    const server = await startTestServer()
    const seen: Array<Tokens | undefined> = []
    const client = createGatewayClient(server.baseUrl, { onTokens: (tokens) => seen.push(tokens) })
    expect((await client.register('eden_player', 'eden-password-1')).status).toBe(201)
    const me = await client.api.auth.me.get()
    expect(me.data?.username).toBe('eden_player')
    const room = await client.api.rooms.post({ room_name: 'Eden room', max_players: 2 })
    expect(room.status).toBe(201)
    const mine = await client.api.rooms.my.get({ query: { limit: 10 } })
    expect(mine.data?.rooms.map((each) => each.room_name)).toEqual(['Eden room'])
    const refused = await client.api.rooms.post({ room_name: '' })
    expect(refused.status).toBe(422)
    expect(refused.error?.value).toMatchObject({ success: false, error: 'validation_error' })
    await client.logout()
    expect(client.tokens).toBeUndefined()
    expect(seen.at(-1)).toBeUndefined()
    expect((await client.api.auth.me.get()).status).toBe(401)
  })

  test('a refused access token is renewed once with the rotating refresh token, however many requests were refused at once', async () => {
    const server = await startTestServer()
    const first = createGatewayClient(server.baseUrl)
    await first.login('root_admin', 'root-admin-password')
    const held = first.tokens!
    let refreshes = 0
    const counting: typeof fetch = ((input: FetchInput, init?: RequestInit) => {
      if (String(input).endsWith('/auth/refresh')) refreshes++
      return fetch(input, init)
    }) as typeof fetch
    // As if the access token had expired while the app slept.
    const client = createGatewayClient(server.baseUrl, { tokens: { access: 'expired.access.token', refresh: held.refresh }, fetch: counting })
    const answers = await Promise.all(Array.from({ length: 5 }, () => client.api.users.me.get()))
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200])
    expect(refreshes).toBe(1)
    expect(client.tokens?.refresh).not.toBe(held.refresh)
    // The session lives on: the new pair works, and the spent refresh token is not reused.
    expect((await client.api.auth.me.get()).data?.username).toBe('root_admin')
    expect((await client.refresh())).toBe(true)
    expect((await client.api.auth.me.get()).status).toBe(200)
  })

  test('when the refresh token is refused too, the client forgets the session and answers the 401', async () => {
    const server = await startTestServer()
    const client = createGatewayClient(server.baseUrl, { tokens: { access: 'expired.access.token', refresh: 'long-gone-refresh-token' } })
    const answer = await client.api.auth.me.get()
    expect(answer.status).toBe(401)
    expect(client.tokens).toBeUndefined()
  })
})
