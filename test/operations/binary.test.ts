import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import packageJson from '../../package.json'
import { healthLatencies } from '../support/attack'
import { compiledBinary, freePort, waitForHealth } from '../support/binary'
import { picture } from '../support/pictures'
import { follower, subscribe } from '../support/realtime'
import { createClient } from '../support/harness'

// The compiled binary, run the way users run it: from a directory with no source, no node_modules
// and no .env, and inside an emulation of the distroless image (read-only root, uid 65532).

const workdir = mkdtempSync(join(tmpdir(), 'sgw-binary-run-'))
let binary: string
const running: Bun.Subprocess[] = []

beforeAll(async () => {
  binary = await compiledBinary()
}, 120_000)

afterAll(async () => {
  for (const child of running) child.kill('SIGKILL')
  await Promise.all(running.map((child) => child.exited))
  rmSync(workdir, { recursive: true, force: true })
})

/** Starts the service on `port`; `command` is the binary itself or the image emulation around it. */
async function start(port: number, command: string[], env: Record<string, string>, cwd = workdir) {
  const child = Bun.spawn(command, { cwd, env, stdout: 'ignore', stderr: 'inherit' })
  running.push(child)
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHealth(baseUrl, child)
  return { child, baseUrl, client: createClient((request) => fetch(request), baseUrl) }
}

async function stop(child: Bun.Subprocess) {
  child.kill('SIGTERM')
  await child.exited
}

/** What a user of the shipped artefact notices first: it answers, refuses, documents itself, keeps data. */
async function endToEnd(launch: (port: number) => Promise<Awaited<ReturnType<typeof start>>>) {
  const first = await launch(await freePort())
  // The --minify trap: without the safe build flags, a request with no Authorization header answers 500.
  const anonymous = await first.client.get('/auth/me')
  expect(anonymous.status).toBe(401)
  expect(anonymous.body.error).toBe('unauthorized')
  const user = await first.client.register('binary_user')
  expect((await first.client.get('/users/me', user.access)).body.username).toBe('binary_user')
  // A profile checked against the ICU data the binary carries, a linked page, and the account's export streamed out.
  const profile = await first.client.put('/users/me', { display_name: 'Binary', email: 'binary@example.com', locale: 'ru-ru', time_zone: 'europe/moscow' }, user.access)
  expect(profile.body).toMatchObject({ display_name: 'Binary', locale: 'ru-RU', time_zone: 'Europe/Moscow' })
  expect((await first.client.put('/users/me', { time_zone: 'Mars/Olympus' }, user.access)).status).toBe(422)
  expect((await first.client.post('/users/me/linked-accounts', { social_network: 'vk', connection_link: 'https://vk.com/binary_user' }, user.access)).status).toBe(201)
  const exported = (await first.client.get('/users/me/export', user.access)).body
  expect(exported.account).toMatchObject({ email: 'binary@example.com', linked_accounts: [{ social_network: 'vk', connection_link: 'https://vk.com/binary_user' }] })
  // Bun.Image inside the binary: a picture decoded, re-encoded, kept in the data folder and served.
  const form = new FormData()
  form.append('avatar_file', new File([await picture('jpeg', 300, 200)], 'me.jpg'))
  const uploaded = await fetch(`${first.baseUrl}/users/me/avatar`, { method: 'PUT', body: form, headers: { authorization: `Bearer ${user.access}` } })
  expect(uploaded.status).toBe(200)
  const avatarUrl = ((await uploaded.json()) as { avatar_url: string }).avatar_url
  expect(await new Bun.Image(await (await fetch(`${first.baseUrl}${avatarUrl}`)).bytes()).metadata()).toEqual({ width: 300, height: 200, format: 'webp' })
  const room = await first.client.post('/rooms', { room_name: 'Packed' }, user.access)
  expect(room.status).toBe(201)
  // Lists are read on the SQLite store's reader thread, a file of its own inside the binary.
  expect((await first.client.get('/rooms/my', user.access)).body).toMatchObject({ total_count: 1, rooms: [{ room_name: 'Packed' }] })
  // The websocket: authenticated, subscribed, and the room's closing heard live.
  const socket = await follower(first.baseUrl, user.access)
  expect(await subscribe(socket, `room:${room.body.room_id}`)).toMatchObject({ op: 'subscribed', recovered: true })
  const closed = await first.client.post(`/rooms/${room.body.room_id}/close`, undefined, user.access)
  expect(closed.status).toBe(200)
  await socket.until(() => socket.types(`room:${room.body.room_id}`).includes('room_closed'))
  socket.close()
  expect((await first.client.get('/asyncapi/json')).body.asyncapi).toBe('3.0.0')
  // The protocol page: its script and the parsed document, both made when the binary was compiled.
  const protocolPage = await (await fetch(`${first.baseUrl}/asyncapi`)).text()
  expect(protocolPage).toContain('"x-parser-spec-parsed":true')
  const protocolScript = await fetch(`${first.baseUrl}/asyncapi/assets/asyncapi.js`)
  expect([protocolScript.status, (await protocolScript.arrayBuffer()).byteLength > 1_000_000]).toEqual([200, true])

  // The lobby page's script, bundled from client/ into the binary when it was compiled.
  const lobbyScript = await fetch(`${first.baseUrl}/lobby/lobby.js`)
  expect([lobbyScript.status, lobbyScript.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8'])
  expect((await lobbyScript.text()).length).toBeGreaterThan(10_000)
  const page = await fetch(`${first.baseUrl}/swagger`)
  const html = await page.text()
  expect(page.status).toBe(200)
  expect(html).toContain('/swagger/assets/swagger-ui-bundle.js')
  const bundle = await fetch(`${first.baseUrl}/swagger/assets/swagger-ui-bundle.js`)
  expect(bundle.status).toBe(200)
  expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000)
  const document = await first.client.get('/swagger/json')
  expect(document.body.openapi).toStartWith('3.1')
  expect(Object.keys(document.body.paths)).toContain('/rooms/{room_id}/join')
  await stop(first.child)

  const second = await launch(await freePort())
  expect((await second.client.login('binary_user', 'password-123')).userId).toBe(user.userId)
  expect((await second.client.get(`/rooms/${room.body.room_id}`, user.access)).body).toMatchObject({ room_name: 'Packed', is_closed: true })
  expect((await fetch(`${second.baseUrl}${avatarUrl}`)).status).toBe(200)
  return second
}

const secrets = { JWT_SECRET: 'binary-test-secret-long-enough-for-hs256!!', PASSWORD_MEMORY_COST: '19456', LOG_LEVEL: 'warn' }

describe('the compiled binary', () => {
  test('--version prints the package version', () => {
    const run = Bun.spawnSync([binary, '--version'], { cwd: workdir })
    expect(run.stdout.toString().trim()).toBe(packageJson.version)
  })

  test('runs from an empty directory, ignores a .env there, and keeps its data across a restart', async () => {
    const cwd = join(workdir, 'plain')
    mkdirSync(cwd)
    // A .env the binary must not read: if it did, this invalid level would stop it at start-up.
    await Bun.write(join(cwd, '.env'), 'LOG_LEVEL=shouting\n')
    const database = `sqlite:${join(cwd, 'data', 'gateway.sqlite')}`
    const second = await endToEnd((port) => start(port, [binary], { ...secrets, DATABASE_URL: database, PORT: String(port), HOST: '127.0.0.1' }, cwd))
    await stop(second.child)
  }, 30_000)

  test('runs as production whatever NODE_ENV says: a deeply nested body is a quick 400 and /health stays fast', async () => {
    const port = await freePort()
    const env = { ...secrets, NODE_ENV: 'development', DATABASE_URL: 'sqlite::memory:', PORT: String(port), HOST: '127.0.0.1' }
    const service = await start(port, [binary], env)
    const deep = '['.repeat(30_000) + ']'.repeat(30_000)
    const attack = Promise.all(Array.from({ length: 6 }, () => service.client.post('/auth/login', deep)))
    const latencies = await healthLatencies(service.baseUrl, attack)
    expect((await attack).map((reply) => reply.status)).toEqual(Array(6).fill(400))
    expect(Math.max(...latencies)).toBeLessThan(500)
    const invalid = await service.client.post('/auth/login', { username: ['SECRET-VALUE'], password: 'password-123' })
    expect(invalid.status).toBe(422)
    expect(JSON.stringify(invalid.body)).not.toContain('SECRET-VALUE')
    await stop(service.child)
  }, 30_000)

  test('refuses a bad setting with exit code 2 and the variable named', () => {
    const run = Bun.spawnSync([binary], { cwd: workdir, env: { PORT: 'eighty' }, stderr: 'pipe' })
    expect(run.exitCode).toBe(2)
    expect(run.stderr.toString()).toContain('PORT: expected an integer')
  })
})

const canEmulateImage = process.getuid?.() === 0 && Bun.which('unshare') !== null && Bun.which('chroot') !== null
if (!canEmulateImage) console.warn('skipping the distroless image emulation: it needs root, unshare and chroot')

describe.if(canEmulateImage)('the binary as the distroless image runs it', () => {
  const emulate = (data: string, ...settings: string[]) => ['scripts/run-like-image.sh', binary, data, ...settings]

  test('read-only root, uid 65532: answers, documents itself, keeps data in /data; --healthcheck tells up from down', async () => {
    const data = join(workdir, 'image-data')
    mkdirSync(data)
    const settings = Object.entries(secrets).map(([key, value]) => `${key}=${value}`)
    const launch = (port: number) => start(port, emulate(data, ...settings, `PORT=${port}`), { PATH: Bun.env.PATH ?? '' }, process.cwd())
    const second = await endToEnd(launch)
    const port = new URL(second.baseUrl).port

    const healthy = Bun.spawnSync(emulate(data, `PORT=${port}`, '--healthcheck'))
    expect(healthy.exitCode).toBe(0)
    const wrongPort = Bun.spawnSync(emulate(data, `PORT=${await freePort()}`, '--healthcheck'))
    expect(wrongPort.exitCode).toBe(1)
    await stop(second.child)
    const down = Bun.spawnSync(emulate(data, `PORT=${port}`, '--healthcheck'))
    expect(down.exitCode).toBe(1)

    const files = await Array.fromAsync(new Bun.Glob('*').scan({ cwd: data }))
    expect(files).toContain('sim-gateway.sqlite')
    expect(await Array.fromAsync(new Bun.Glob('avatars/*/*.webp').scan({ cwd: data }))).toHaveLength(1)
    for (const file of files) expect({ file, mode: statSync(join(data, file)).mode & 0o777 }).toEqual({ file, mode: 0o600 })
  }, 60_000)
})
