import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closeTestResources, freshDatabaseUrl, STORE, TEST_DATABASE_URL, TEST_ENV } from '../support/harness'
import { openDatabase } from '../../src/db/database'
import { slowUpload } from '../support/attack'
import { startService } from '../support/process'

afterAll(closeTestResources)
const directory = mkdtempSync(join(tmpdir(), 'sgw-lifecycle-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const databaseUrl = async (name: string) => (TEST_DATABASE_URL ? freshDatabaseUrl() : `sqlite:${join(directory, `${name}.sqlite`)}`)

// A registration at this argon2id cost takes about a second here: a real, slow write to have in flight.
const SLOW_HASHING = { PASSWORD_MEMORY_COST: '262144', PASSWORD_TIME_COST: '3' }

describe(`graceful shutdown on ${STORE} (SECURITY 20)`, () => {
  test('on SIGTERM: stops accepting, finishes the request in flight, stores its write, closes the store, exits 0', async () => {
    const env = { ...TEST_ENV, ...SLOW_HASHING, LOG_LEVEL: 'info', DATABASE_URL: await databaseUrl('sigterm') }
    const service = await startService(env)
    const inFlight = service.client.post('/auth/registrate', { username: 'last_one_in', password: 'password-123' })
    await Bun.sleep(200)
    service.child.kill('SIGTERM')
    await Bun.sleep(100)
    const late = await fetch(`${service.baseUrl}/health`).then(
      (response) => response.status,
      () => 'refused',
    )
    expect(late).toBe('refused')
    expect((await inFlight).status).toBe(201)
    expect(await service.child.exited).toBe(0)
    const log = (await service.output()).split('\n').filter(Boolean).map((line) => JSON.parse(line).message)
    expect(log).toEqual(expect.arrayContaining(['shutting down', 'stopped']))
    expect(log.indexOf('stopped')).toBeGreaterThan(log.lastIndexOf('request'))

    const restarted = await startService(env)
    expect((await restarted.client.post('/auth/login', { username: 'last_one_in', password: 'password-123' })).status).toBe(200)
    restarted.child.kill('SIGINT')
    expect(await restarted.child.exited).toBe(0)
  }, 30_000)

  test('a request still running at SHUTDOWN_TIMEOUT is cut off, and the exit code says so', async () => {
    const env = { ...TEST_ENV, ...SLOW_HASHING, PASSWORD_MEMORY_COST: '524288', SHUTDOWN_TIMEOUT: '1', DATABASE_URL: await databaseUrl('deadline') }
    const service = await startService(env)
    const slow = service.client.post('/auth/registrate', { username: 'too_slow', password: 'password-123' }).catch(() => 'cut off')
    await Bun.sleep(100)
    const signalled = performance.now()
    service.child.kill('SIGTERM')
    expect(await service.child.exited).toBe(1)
    expect(performance.now() - signalled).toBeLessThan(2000)
    await slow
  }, 30_000)
})

describe(`slow clients on ${STORE} (SECURITY 26)`, () => {
  test('twenty bodies trickled a byte at a time do not hold a shutdown past BODY_TIMEOUT', async () => {
    const env = { ...TEST_ENV, BODY_TIMEOUT: '2', SHUTDOWN_TIMEOUT: '10', DATABASE_URL: await databaseUrl('slow-bodies') }
    const service = await startService(env)
    const uploads = Array.from({ length: 20 }, () => slowUpload(service.baseUrl, '/auth/login', 1000, 500))
    await Bun.sleep(300)
    const signalled = performance.now()
    service.child.kill('SIGTERM')
    expect(await service.child.exited).toBe(0)
    expect(performance.now() - signalled).toBeLessThan(4000)
    for (const answer of await Promise.all(uploads)) expect(answer).toStartWith('HTTP/1.1 408')
  }, 30_000)
})

describe(`housekeeping on ${STORE}`, () => {
  test('the running service purges ended sessions every PURGE_INTERVAL seconds and logs it', async () => {
    const url = await databaseUrl('purge')
    const service = await startService({ ...TEST_ENV, LOG_LEVEL: 'info', PURGE_INTERVAL: '1', DATABASE_URL: url })
    const user = await service.client.register('purged_user')
    const db = await openDatabase(url, 1)
    await db.run("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'")
    await db.close()
    await Bun.sleep(2500)
    expect((await service.client.post('/auth/refresh', { refresh_token: user.refresh })).status).toBe(401)
    service.child.kill('SIGTERM')
    expect(await service.child.exited).toBe(0)
    const purges = (await service.output())
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((line) => line.message === 'expired rows purged')
    expect(purges).toEqual([expect.objectContaining({ level: 'info', sessions: 1 })])
  }, 30_000)
})
