import { afterAll, describe, expect, test } from 'bun:test'
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBinary } from '../support/binary'
import { TEST_ENV } from '../support/harness'
import { nginxAvailable, startNginx } from '../support/nginx'

// deploy/nginx/ as an operator uses it: Debian's nginx with auth_request in front of an upstream,
// the compiled binary as the judge of tokens. .ci/run installs nginx-light.

const cleanups: Array<() => void> = []
afterAll(() => cleanups.forEach((cleanup) => cleanup()))

/** deploy/nginx/example.conf with this test's addresses and paths in place of the documented ones. */
async function startProxy(gatewayPort: number, upstreamPort: number) {
  const nginx = await startNginx((port, prefix) => {
    cpSync('deploy/nginx', join(prefix, 'sim-gateway'), { recursive: true })
    return readFileSync('deploy/nginx/example.conf', 'utf8')
      .replace('server 127.0.0.1:3000;', `server 127.0.0.1:${gatewayPort};`)
      .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${upstreamPort};`)
      .replace('listen 8000;', `listen 127.0.0.1:${port};`)
      .replaceAll('/etc/nginx/sim-gateway/', `${prefix}/sim-gateway/`)
  }, '/api/health')
  cleanups.push(nginx.stop)
  return nginx.baseUrl
}

describe.if(nginxAvailable)('nginx auth_request in front of an upstream, with the compiled binary as judge', () => {
  test('no, bad, refresh, logged-out and deactivated tokens get 401 with the challenge; a good one reaches the upstream as X-User-Id and X-User-Role', async () => {
    const gateway = await startBinary({ ...TEST_ENV, DATABASE_URL: 'sqlite::memory:', LOG_LEVEL: 'warn' })
    cleanups.push(() => gateway.child.kill('SIGKILL'))
    const seen: Array<Record<string, string | null>> = []
    const upstream = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(request) {
        seen.push({ path: new URL(request.url).pathname, userId: request.headers.get('x-user-id'), userRole: request.headers.get('x-user-role') })
        return new Response('simulator says hello')
      },
    })
    cleanups.push(() => upstream.stop(true))
    const proxy = await startProxy(gateway.port, Number(upstream.port))
    const through = (token?: string, headers: Record<string, string> = {}) =>
      fetch(`${proxy}/simulator/plant/7`, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } })

    // Logged in through the proxy, as a client would.
    const login = async (username: string) => {
      await fetch(`${proxy}/api/auth/registrate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'password-123' }) })
      const reply = await fetch(`${proxy}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'password-123' }) })
      return (await reply.json()) as { access_token: { token: string }; refresh_token: { token: string }; user: { user_id: string } }
    }
    const player = await login('proxied_player')
    const quitter = await login('proxied_quitter')
    const banned = await login('proxied_banned')
    await fetch(`${proxy}/api/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${quitter.access_token.token}` } })
    const admin = await gateway.client.loginAdmin()
    expect((await gateway.client.post(`/users/${banned.user.user_id}/deactivate`, undefined, admin.access)).status).toBe(200)

    const refused = {
      none: await through(),
      garbage: await through('not.a.token'),
      refreshTokenAsBearer: await through(player.refresh_token.token),
      afterLogout: await through(quitter.access_token.token),
      afterDeactivation: await through(banned.access_token.token),
    }
    for (const [name, response] of Object.entries(refused)) {
      expect({ name, status: response.status }).toEqual({ name, status: 401 })
      expect({ name, challenge: response.headers.get('www-authenticate') }).toEqual({ name, challenge: expect.stringMatching(/^Bearer realm="sim-gateway"/) })
    }
    expect(refused.garbage.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(seen).toEqual([])

    // A client cannot speak for someone else: its own identity headers are replaced.
    const allowed = await through(player.access_token.token, { 'x-user-id': 'someone-else', 'x-user-role': 'admin' })
    expect(allowed.status).toBe(200)
    expect(await allowed.text()).toBe('simulator says hello')
    expect(seen).toEqual([{ path: '/plant/7', userId: player.user.user_id, userRole: 'user' }])
  }, 60_000)
})

describe.if(nginxAvailable)('the balancer of compose.scale.yaml (deploy/nginx/balancer.conf), in front of two compiled instances', () => {
  test('sockets and requests spread over the instances; sockets per client address are capped across all of them; a dead instance costs no request', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'sgw-balancer-'))
    cleanups.push(() => rmSync(folder, { recursive: true, force: true }))
    // Two instances on one store (a SQLite file here; PostgreSQL in compose.scale.yaml).
    const env = { ...TEST_ENV, DATABASE_URL: `sqlite:${join(folder, 'shared.sqlite')}`, LOG_LEVEL: 'warn', TRUST_PROXY: 'true' }
    const a = await startBinary(env)
    const b = await startBinary(env)
    cleanups.push(() => a.child.kill('SIGKILL'), () => b.child.kill('SIGKILL'))
    const nginx = await startNginx((port) =>
      readFileSync('deploy/nginx/balancer.conf', 'utf8')
        .replace(/server gateway:3000 (.*);/, (_, options) => [a, b].map(({ port }) => `server 127.0.0.1:${port} ${options};`).join('\n        '))
        .replace('listen 80;', `listen 127.0.0.1:${port};`),
    )
    cleanups.push(nginx.stop)
    const players = await Promise.all([0, 1].map((i) => b.client.register(`balanced_${i}`)))

    /** A socket through the balancer: `ready` once authenticated, or how it was refused. */
    const open = (token: string) =>
      new Promise<{ socket: WebSocket; ready: boolean }>((resolve) => {
        const socket = new WebSocket(`${nginx.baseUrl.replace('http', 'ws')}/realtime`)
        socket.onmessage = (message) => {
          const frame = JSON.parse(String(message.data))
          if (frame.op === 'hello') socket.send(JSON.stringify({ op: 'auth', token }))
          if (frame.op === 'ready') resolve({ socket, ready: true })
        }
        socket.onclose = () => resolve({ socket, ready: false })
      })
    // The balancer's cap is 20 a client address; each instance's own (REALTIME_MAX_SOCKETS_PER_ADDRESS) is 256.
    const sockets: WebSocket[] = []
    for (let i = 0; i < 20; i++) {
      const opened = await open(players[i % 2]!.access)
      expect(opened.ready).toBe(true)
      sockets.push(opened.socket)
    }
    const held = async (instance: { client: typeof a.client }) => {
      const text = String((await instance.client.get('/metrics')).body)
      return Number(text.match(/^realtime_sockets (\d+)/m)![1])
    }
    expect([await held(a), await held(b)]).toEqual([10, 10])
    expect((await open(players[0]!.access)).ready).toBe(false)
    sockets.pop()!.close()
    await Bun.sleep(100)
    const again = await open(players[0]!.access)
    expect(again.ready).toBe(true)
    sockets.push(again.socket)

    a.child.kill('SIGKILL')
    await a.child.exited
    for (let i = 0; i < 10; i++) {
      const reply = await fetch(`${nginx.baseUrl}/auth/me`, { headers: { authorization: `Bearer ${players[0]!.access}` } })
      expect(reply.status).toBe(200)
    }
    for (const socket of sockets) socket.close()
  }, 60_000)
})
