/**
 * Every operation of the OpenAPI document, called the way a front-end developer would with a client
 * generated from it: openapi-typescript turns /swagger/json into ./schema.d.ts (at test time, not
 * committed) and openapi-fetch calls it. test/generated-client.test.ts type-checks this file against
 * the generated types first, so a document that misleads the generator fails there.
 */
import createClient from 'openapi-fetch'
import type { paths } from './schema'

export interface Answer {
  method: string
  /** The path template of the document, such as /rooms/{room_id}. */
  path: string
  status: number
  body: unknown
}

const PASSWORD = 'generated-client-password'
const ONE_PIXEL_PNG = Uint8Array.fromBase64('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')

export async function callEveryOperation(baseUrl: string, admin: { username: string; password: string }): Promise<Answer[]> {
  const answers: Answer[] = []
  let token = ''
  const client = createClient<paths>({ baseUrl })
  client.use({
    onRequest: ({ request }) => {
      if (token && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${token}`)
      return request
    },
  })
  /** Records what a call answered, under its path template, and hands back its data. */
  const record = async <Data>(method: string, path: string, call: Promise<{ data?: Data; error?: unknown; response: Response }>) => {
    const { data, error, response } = await call
    answers.push({ method, path, status: response.status, body: data ?? error })
    return data
  }
  const as = <Result>(bearer: string, work: () => Promise<Result>) => {
    const previous = token
    token = bearer
    return work().finally(() => {
      token = previous
    })
  }

  await record('get', '/health', client.GET('/health'))
  await record('get', '/ready', client.GET('/ready'))
  await record('get', '/metrics', client.GET('/metrics', { parseAs: 'text' }))

  const registered = await record('post', '/auth/registrate', client.POST('/auth/registrate', { body: { username: 'generated_player', password: PASSWORD } }))
  await record('post', '/auth/registrate', client.POST('/auth/registrate', { body: { username: 'generated_guest', password: PASSWORD } }))
  const login = await record('post', '/auth/login', client.POST('/auth/login', { body: { username: 'generated_player', password: PASSWORD } }))
  await record('post', '/auth/login', client.POST('/auth/login', { body: { username: 'generated_player', password: 'not-the-password' } }))
  if (!registered || !login) throw new Error('registration or login failed')
  // The refresh_token object exactly as login returned it: SPEC allows it, and the types must too.
  const once = await record('post', '/auth/refresh', client.POST('/auth/refresh', { body: { refresh_token: login.refresh_token } }))
  if (!once) throw new Error('refresh failed')
  // Or the bare string; a spent one is refused (and would end the session, so it goes last).
  const refreshed = await record('post', '/auth/refresh', client.POST('/auth/refresh', { body: { refresh_token: once.refresh_token.token } }))
  if (!refreshed) throw new Error('refresh failed')
  token = refreshed.access_token.token

  // A desktop logged in by this (phone) session: started, looked at, approved, exchanged; another denied; a forged signature refused.
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  const { x = '', y = '' } = await crypto.subtle.exportKey('jwk', keys.publicKey)
  const publicKey = { kty: 'EC' as const, crv: 'P-256' as const, x, y }
  const sign = async (requestId: string) =>
    new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, new TextEncoder().encode(`qr-login:${requestId}`))).toBase64({ alphabet: 'base64url', omitPadding: true })
  const sealing = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits'])) as CryptoKeyPair
  const { x: ex = '', y: ey = '' } = await crypto.subtle.exportKey('jwk', sealing.publicKey)
  const keysOf = { public_key: publicKey, encryption_key: { kty: 'EC' as const, crv: 'P-256' as const, x: ex, y: ey } }
  const desktop = await record('post', '/auth/qr', client.POST('/auth/qr', { body: keysOf }))
  const denied = await record('post', '/auth/qr', client.POST('/auth/qr', { body: keysOf }))
  if (!desktop || !denied) throw new Error('starting a QR login failed')
  await record('post', '/auth/qr/inspect', client.POST('/auth/qr/inspect', { body: { code: desktop.code } }))
  await record('post', '/auth/qr/approve', client.POST('/auth/qr/approve', { body: { code: desktop.code } }))
  await record('post', '/auth/qr/deny', client.POST('/auth/qr/deny', { body: { code: denied.code } }))
  await record('post', '/auth/qr/token', client.POST('/auth/qr/token', { body: { request_id: desktop.request_id, signature: await sign(denied.request_id) } }))
  await record('post', '/auth/qr/token', client.POST('/auth/qr/token', { body: { request_id: desktop.request_id, signature: await sign(desktop.request_id) } }))
  await record('post', '/auth/qr/token', client.POST('/auth/qr/token', { body: { request_id: denied.request_id, signature: await sign(denied.request_id) } }))

  // No provider is configured here: the providers are none, and naming one is a 404.
  const provider = { params: { path: { provider: 'yandex' } } }
  await record('get', '/auth/oauth/providers', client.GET('/auth/oauth/providers'))
  await record('post', '/auth/oauth/{provider}/start', client.POST('/auth/oauth/{provider}/start', provider))
  await record('post', '/auth/oauth/{provider}/callback', client.POST('/auth/oauth/{provider}/callback', { ...provider, body: { state: 'unknown', flow_secret: 'unknown', code: 'x' } }))
  await record('post', '/auth/oauth/{provider}/link', client.POST('/auth/oauth/{provider}/link', provider))
  await record('post', '/auth/oauth/{provider}/link/callback', client.POST('/auth/oauth/{provider}/link/callback', { ...provider, body: { state: 'unknown', flow_secret: 'unknown', error: 'access_denied' } }))
  await record('get', '/auth/identities', client.GET('/auth/identities'))
  await record('delete', '/auth/identities/{identity_id}', client.DELETE('/auth/identities/{identity_id}', { params: { path: { identity_id: crypto.randomUUID() } } }))

  await record('get', '/auth/me', client.GET('/auth/me'))
  await record('get', '/auth/verify-token', client.GET('/auth/verify-token'))
  await record('post', '/auth/verify-token', client.POST('/auth/verify-token'))
  await as('not.a.token', () => record('get', '/auth/me', client.GET('/auth/me')))
  await record('get', '/users/me', client.GET('/users/me'))
  await record('put', '/users/me', client.PUT('/users/me', { body: { username: 'generated_player_2' } }))
  await record('put', '/users/me', client.PUT('/users/me', { body: { user_role: 'admin' } }))
  await record('get', '/users', client.GET('/users'))

  // A file goes as a form; the document says so, and the generated type takes a Blob.
  const asForm = (body: Record<string, Blob | string>) => {
    const form = new FormData()
    for (const [name, value] of Object.entries(body)) form.append(name, value)
    return form
  }
  const picture = new File([await new Bun.Image(ONE_PIXEL_PNG).resize(64, 64).png().bytes()], 'me.png', { type: 'image/png' })
  const pictured = await record('put', '/users/me/avatar', client.PUT('/users/me/avatar', { body: { avatar_file: picture }, bodySerializer: asForm }))
  await record('put', '/users/me/avatar', client.PUT('/users/me/avatar', { body: { avatar_file: new File(['<svg/>'], 'me.svg') }, bodySerializer: asForm }))
  const [userId, file] = pictured?.avatar_url?.split('/').slice(-2) ?? []
  if (!userId || !file) throw new Error('avatar upload failed')
  await record('get', '/avatars/{user_id}/{file}', client.GET('/avatars/{user_id}/{file}', { params: { path: { user_id: userId, file } }, parseAs: 'text' }))
  await record('get', '/avatars/{user_id}/{file}', client.GET('/avatars/{user_id}/{file}', { params: { path: { user_id: userId, file: 'me.png' } }, parseAs: 'text' }))
  await record('delete', '/users/me/avatar', client.DELETE('/users/me/avatar'))
  await record('get', '/avatars/{user_id}/{file}', client.GET('/avatars/{user_id}/{file}', { params: { path: { user_id: userId, file } }, parseAs: 'text' }))

  const room = await record('post', '/rooms', client.POST('/rooms', { body: { room_name: 'Generated control room', max_players: 3, game_role: 'shift lead' } }))
  await record('post', '/rooms', client.POST('/rooms', { body: { room_name: '', max_players: 3 } }))
  if (!room) throw new Error('room creation failed')
  const roomPath = { params: { path: { room_id: room.room_id } } }
  await record('get', '/rooms/my', client.GET('/rooms/my', { params: { query: { limit: 10, offset: 0, is_closed: 'false' } } }))
  await record('post', '/rooms/my', client.POST('/rooms/my', { params: { query: { limit: 10 } } }))
  await record('get', '/rooms/{room_id}', client.GET('/rooms/{room_id}', roomPath))
  await record('post', '/rooms/{room_id}', client.POST('/rooms/{room_id}', roomPath))
  await record('get', '/rooms/{room_id}', client.GET('/rooms/{room_id}', { params: { path: { room_id: '01936b2e-7c4a-7f3e-9b1d-2f5c8a9e4d10' } } }))
  const invitation = await record(
    'post',
    '/rooms/{room_id}/invite',
    client.POST('/rooms/{room_id}/invite', { ...roomPath, body: { user_name: 'generated_guest', player_role: 'operator' } }),
  )
  await record(
    'post',
    '/rooms/{room_id}/invite',
    client.POST('/rooms/{room_id}/invite', { ...roomPath, body: { user_name: 'nobody_at_all', player_role: 'operator' } }),
  )
  await record('get', '/invites/sent', client.GET('/invites/sent', { params: { query: { status: 'pending' } } }))
  if (!invitation?.ct) throw new Error('invitation failed')

  const guestLogin = await record('post', '/auth/login', client.POST('/auth/login', { body: { username: 'generated_guest', password: PASSWORD } }))
  if (!guestLogin) throw new Error('guest login failed')
  const guest = guestLogin.access_token.token
  await as(guest, async () => {
    await record('get', '/invites/my', client.GET('/invites/my', { params: { query: { is_accepted: 'false' } } }))
    await record('post', '/rooms/{room_id}/join', client.POST('/rooms/{room_id}/join', { ...roomPath, body: { ct: invitation.ct ?? '' } }))
    await record('post', '/rooms/{room_id}/join', client.POST('/rooms/{room_id}/join', { ...roomPath, body: { ct: invitation.ct ?? '' } }))
    await record('delete', '/rooms/{room_id}/members/me', client.DELETE('/rooms/{room_id}/members/me', roomPath))
  })
  const again = await record(
    'post',
    '/rooms/{room_id}/invite',
    client.POST('/rooms/{room_id}/invite', { ...roomPath, body: { user_name: 'generated_guest', player_role: 'engineer' } }),
  )
  if (!again) throw new Error('second invitation failed')
  await as(guest, () =>
    record('post', '/invites/{invite_id}/decline', client.POST('/invites/{invite_id}/decline', { params: { path: { invite_id: again.invite_id } } })),
  )
  await record('delete', '/invites/{invite_id}', client.DELETE('/invites/{invite_id}', { params: { path: { invite_id: again.invite_id } } }))
  const third = await record(
    'post',
    '/rooms/{room_id}/invite',
    client.POST('/rooms/{room_id}/invite', { ...roomPath, body: { user_name: 'generated_guest', player_role: 'x' } }),
  )
  if (!third) throw new Error('third invitation failed')
  await record('delete', '/invites/{invite_id}', client.DELETE('/invites/{invite_id}', { params: { path: { invite_id: third.invite_id } } }))
  // Someone who is neither owner nor admin.
  await as(guest, () =>
    record(
      'post',
      '/rooms/{room_id}/invite',
      client.POST('/rooms/{room_id}/invite', { ...roomPath, body: { user_name: 'generated_player_2', player_role: 'x' } }),
    ),
  )
  await record(
    'delete',
    '/rooms/{room_id}/members/{user_id}',
    client.DELETE('/rooms/{room_id}/members/{user_id}', { params: { path: { room_id: room.room_id, user_id: registered.user.user_id } } }),
  )
  const message = await record(
    'post',
    '/rooms/{room_id}/messages',
    client.POST('/rooms/{room_id}/messages', { ...roomPath, body: { body: 'Generated: all stations report', client_id: 'gen-1' } }),
  )
  if (!message) throw new Error('message failed')
  await record('post', '/rooms/{room_id}/messages', client.POST('/rooms/{room_id}/messages', { ...roomPath, body: { body: 'again', client_id: 'gen-1' } }))
  await record('post', '/rooms/{room_id}/messages', client.POST('/rooms/{room_id}/messages', { ...roomPath, body: { body: '' } }))
  await record(
    'get',
    '/rooms/{room_id}/messages',
    client.GET('/rooms/{room_id}/messages', { params: { path: { room_id: room.room_id }, query: { limit: 10 } } }),
  )
  const messagePath = { params: { path: { room_id: room.room_id, message_id: message.message_id } } }
  await record(
    'patch',
    '/rooms/{room_id}/messages/{message_id}',
    client.PATCH('/rooms/{room_id}/messages/{message_id}', { ...messagePath, body: { body: 'Generated, edited' } }),
  )
  await record('delete', '/rooms/{room_id}/messages/{message_id}', client.DELETE('/rooms/{room_id}/messages/{message_id}', messagePath))
  await record('post', '/rooms/{room_id}/close', client.POST('/rooms/{room_id}/close', roomPath))

  const peer = { params: { path: { user_id: invitation.receiver_id } } }
  await record(
    'post',
    '/dms/{user_id}/messages',
    client.POST('/dms/{user_id}/messages', { ...peer, body: { body: 'Generated: a direct message', client_id: 'dm-1' } }),
  )
  await record('post', '/dms/{user_id}/messages', client.POST('/dms/{user_id}/messages', { ...peer, body: { body: 'again', client_id: 'dm-1' } }))
  await record(
    'post',
    '/dms/{user_id}/messages',
    client.POST('/dms/{user_id}/messages', { params: { path: { user_id: registered.user.user_id } }, body: { body: 'me' } }),
  )
  await record('get', '/dms', client.GET('/dms', { params: { query: { limit: 10 } } }))
  await record(
    'get',
    '/dms/{user_id}/messages',
    client.GET('/dms/{user_id}/messages', { params: { path: { user_id: invitation.receiver_id }, query: { limit: 10 } } }),
  )
  await record('post', '/dms/{user_id}/read', client.POST('/dms/{user_id}/read', { ...peer, body: { last_read_seq: 1 } }))
  await record(
    'post',
    '/dms/{user_id}/read',
    client.POST('/dms/{user_id}/read', { params: { path: { user_id: '01936b2e-7c4a-7f3e-9b1d-2f5c8a9e4d10' } }, body: { last_read_seq: 1 } }),
  )
  await record('put', '/blocks/{user_id}', client.PUT('/blocks/{user_id}', peer))
  await record('get', '/blocks', client.GET('/blocks'))
  await record('delete', '/blocks/{user_id}', client.DELETE('/blocks/{user_id}', peer))

  const adminLogin = await record('post', '/auth/login', client.POST('/auth/login', { body: admin }))
  if (!adminLogin) throw new Error('admin login failed')
  await as(adminLogin.access_token.token, async () => {
    await record('get', '/rooms', client.GET('/rooms', { params: { query: { is_ready: 'false', limit: 5 } } }))
    const created = await record('post', '/users', client.POST('/users', { body: { username: 'generated_staff', password: PASSWORD, user_role: 'user' } }))
    await record('post', '/users', client.POST('/users', { body: { username: 'generated_staff', password: PASSWORD } }))
    if (!created) throw new Error('user creation failed')
    const byId = { params: { path: { user_id: created.user_id } } }
    await record('get', '/users', client.GET('/users', { params: { query: { search: 'generated', role: 'user', is_active: 'true', limit: 2, offset: 0 } } }))
    await record('get', '/users/{user_id}', client.GET('/users/{user_id}', byId))
    await record('put', '/users/{user_id}', client.PUT('/users/{user_id}', { ...byId, body: { username: 'generated_staff_2', is_active: true } }))
    await record('post', '/users/{user_id}/deactivate', client.POST('/users/{user_id}/deactivate', byId))
    await record('post', '/users/{user_id}/activate', client.POST('/users/{user_id}/activate', byId))
    await record('delete', '/users/{user_id}', client.DELETE('/users/{user_id}', byId))
    await record('get', '/users/{user_id}', client.GET('/users/{user_id}', byId))
    await record('post', '/users/{user_id}/restore', client.POST('/users/{user_id}/restore', byId))
    await record('post', '/users/{user_id}/restore', client.POST('/users/{user_id}/restore', byId))
    await record('get', '/users', client.GET('/users', { params: { query: { status: 'deleted' } } }))
    await record('get', '/users/me/export', client.GET('/users/me/export'))
    const linked = await record('post', '/users/me/linked-accounts', client.POST('/users/me/linked-accounts', { body: { social_network: 'github', connection_link: 'https://github.com/generated' } }))
    if (!linked) throw new Error('linking failed')
    const mine = { params: { path: { linked_account_id: linked.linked_account_id } } }
    await record('get', '/users/me/linked-accounts', client.GET('/users/me/linked-accounts'))
    await record('put', '/users/me/linked-accounts/{linked_account_id}', client.PUT('/users/me/linked-accounts/{linked_account_id}', { ...mine, body: { connected_for: 'generated' } }))
    await record('delete', '/users/me/linked-accounts/{linked_account_id}', client.DELETE('/users/me/linked-accounts/{linked_account_id}', mine))
    const theirs = await record('post', '/users/{user_id}/linked-accounts', client.POST('/users/{user_id}/linked-accounts', { ...byId, body: { social_network: 'vk', connection_link: 'https://vk.com/generated' } }))
    if (!theirs) throw new Error('linking for a user failed')
    const both = { params: { path: { user_id: created.user_id, linked_account_id: theirs.linked_account_id } } }
    await record('get', '/users/{user_id}/linked-accounts', client.GET('/users/{user_id}/linked-accounts', byId))
    await record('put', '/users/{user_id}/linked-accounts/{linked_account_id}', client.PUT('/users/{user_id}/linked-accounts/{linked_account_id}', { ...both, body: { connected_for: 'by an admin' } }))
    await record('delete', '/users/{user_id}/linked-accounts/{linked_account_id}', client.DELETE('/users/{user_id}/linked-accounts/{linked_account_id}', both))
    await record('delete', '/users/{user_id}/avatar', client.DELETE('/users/{user_id}/avatar', byId))
    // Refused: a wrong password (and an admin may not delete themself anyway).
    await record('delete', '/users/me', client.DELETE('/users/me', { body: { password: 'not-the-password' } }))
    await record('delete', '/users/{user_id}', client.DELETE('/users/{user_id}', { ...byId, params: { ...byId.params, query: { permanent: 'true' } } }))
    await record('get', '/users/{user_id}', client.GET('/users/{user_id}', byId))
  })

  await record(
    'post',
    '/auth/change-password',
    client.POST('/auth/change-password', { body: { current_password: PASSWORD, new_password: 'generated-client-password-2' } }),
  )
  await record('post', '/auth/logout', client.POST('/auth/logout'))
  await record('get', '/auth/me', client.GET('/auth/me'))
  await record('post', '/auth/refresh', client.POST('/auth/refresh', { body: { refresh_token: once.refresh_token.token } }))
  return answers
}
