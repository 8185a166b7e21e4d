import { afterAll, describe, expect, test } from 'bun:test'
import { cpSync, readFileSync } from 'node:fs'
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
