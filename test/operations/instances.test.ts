import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closeTestResources, freshDatabaseUrl, type Session, STORE, TEST_DATABASE_URL, TEST_ENV } from '../support/harness'
import { lobby } from '../support/lobby'
import { type ServiceProcess, startService } from '../support/process'

const directory = mkdtempSync(join(tmpdir(), 'sgw-instances-'))

let a: ServiceProcess
let b: ServiceProcess
beforeAll(async () => {
  const databaseUrl = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(directory, 'shared.sqlite')}`
  const env = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: databaseUrl, LOGIN_MAX_FAILURES: '3' }
  a = await startService(env)
  b = await startService(env)
}, 30_000)
// The instances go first, then their databases.
afterAll(async () => {
  for (const service of [a, b]) service?.child.kill('SIGKILL')
  await Promise.all([a?.child.exited, b?.child.exited])
  rmSync(directory, { recursive: true, force: true })
  await closeTestResources()
})

const count = (statuses: number[], status: number) => statuses.filter((candidate) => candidate === status).length

describe(`two instances on one ${STORE} store`, () => {
  test('a session opened on one instance works on the other; logout on one is refused on the other at once', async () => {
    const user = await a.client.register('roaming_user')
    expect((await b.client.get('/auth/me', user.access)).status).toBe(200)
    expect((await a.client.post('/auth/logout', undefined, user.access)).status).toBe(200)
    expect((await b.client.get('/auth/me', user.access)).status).toBe(401)
    expect((await b.client.post('/auth/refresh', { refresh_token: user.refresh })).status).toBe(401)
  })

  test('deactivation and demotion on one instance bite on the other at once', async () => {
    const admin = await b.client.loginAdmin()
    const user = await a.client.register('remote_target')
    const promoted = await a.client.post('/users', { username: 'remote_admin', password: 'password-123', user_role: 'admin' }, admin.access)
    const remoteAdmin = await a.client.login('remote_admin', 'password-123')
    expect((await a.client.get('/users', remoteAdmin.access)).status).toBe(200)

    await b.client.post(`/users/${user.userId}/deactivate`, undefined, admin.access)
    await b.client.put(`/users/${promoted.body.user_id}`, { user_role: 'user' }, admin.access)
    expect((await a.client.get('/auth/me', user.access)).status).toBe(401)
    expect((await a.client.get('/users', remoteAdmin.access)).status).toBe(403)
  })

  test('failed logins count across instances', async () => {
    await a.client.register('shared_counter')
    const wrong = { username: 'shared_counter', password: 'wrong-password' }
    await a.client.post('/auth/login', wrong)
    await b.client.post('/auth/login', wrong)
    await a.client.post('/auth/login', wrong)
    expect((await b.client.post('/auth/login', { username: 'shared_counter', password: 'password-123' })).status).toBe(429)
  })

  test('room invariants hold across instances: ten joins for two seats, one ct twenty times', async () => {
    const rooms = lobby(a.client)
    const owner = await a.client.register('split_owner')
    const guests: Session[] = await Promise.all(Array.from({ length: 10 }, (_, i) => b.client.register(`split_guest_${i}`)))
    const room = await rooms.createRoom(owner, { max_players: 3 })
    const invitations = await Promise.all(guests.map((guest) => rooms.invite(owner, room.room_id, guest)))
    const joins = await Promise.all(
      guests.map((guest, i) => [a, b][i % 2]!.client.post(`/rooms/${room.room_id}/join`, { ct: invitations[i]!.ct }, guest.access)),
    )
    expect(
      count(
        joins.map((reply) => reply.status),
        200,
      ),
    ).toBe(2)
    expect(await rooms.players(room.room_id, owner)).toHaveLength(3)

    const second = await rooms.createRoom(owner, { max_players: 5 })
    const single = await rooms.invite(owner, second.room_id, guests[0]!)
    const redemptions = await Promise.all(
      Array.from({ length: 20 }, (_, i) => [a, b][i % 2]!.client.post(`/rooms/${second.room_id}/join`, { ct: single.ct }, guests[0]!.access)),
    )
    expect(
      count(
        redemptions.map((reply) => reply.status),
        200,
      ),
    ).toBe(1)
  }, 20_000)
})
