import { describe, expect, test } from 'bun:test'
import { ConfigError, EnvSchema, loadConfig } from '../../src/config'
import { openFileLimit, socketsWithinFileLimit } from '../../src/lib/file-limit'

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

describe('configuration', () => {
  test('defaults need no environment at all', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({ port: 3000, host: '0.0.0.0', apiPrefix: '', accessTokenTtl: 900, refreshTokenTtl: 2_592_000, inviteTtl: 604_800 })
    expect(config.password).toMatchObject({ memoryCost: 65_536, timeCost: 2, concurrency: navigator.hardwareConcurrency })
    expect(config.admin).toBeUndefined()
  })

  test('each bad value is reported by its variable name with what it expects', () => {
    const found = problems({ PORT: 'eighty', ACCESS_TOKEN_TTL: '5', LOG_LEVEL: 'loud', TRUST_PROXY: 'maybe', PASSWORD_MEMORY_COST: '1024' })
    expect(found).toHaveLength(5)
    expect(found.find((line) => line.startsWith('PORT:'))).toContain('an integer from 0 to 65535')
    expect(found.find((line) => line.startsWith('ACCESS_TOKEN_TTL:'))).toContain('from 10 to 86400')
    expect(found.find((line) => line.startsWith('LOG_LEVEL:'))).toContain('debug, info, warn, error, silent')
    expect(found.find((line) => line.startsWith('TRUST_PROXY:'))).toContain('true or false')
    expect(found.find((line) => line.startsWith('PASSWORD_MEMORY_COST:'))).toContain('from 19456')
  })

  test('secrets are never echoed back', () => {
    const found = problems({ JWT_SECRET: 'too-short-secret', ADMIN_USERNAME: 'boss', ADMIN_PASSWORD: 'tiny', DATABASE_URL: 'mysql://user:hunter2@db' })
    expect(found.join('\n')).not.toMatch(/too-short-secret|tiny|hunter2/)
    expect(found.map((line) => line.split(':')[0])).toEqual(expect.arrayContaining(['JWT_SECRET', 'ADMIN_PASSWORD', 'DATABASE_URL']))
  })

  test('settings that depend on each other are checked together', () => {
    expect(problems({ ADMIN_USERNAME: 'boss' })).toEqual(['ADMIN_USERNAME and ADMIN_PASSWORD must be set together'])
    expect(problems({ ROOM_MAX_PLAYERS: '100', ROOM_MAX_PLAYERS_LIMIT: '10' })[0]).toStartWith('ROOM_MAX_PLAYERS must not exceed')
    expect(problems({ CORS_ORIGINS: 'not an origin' })[0]).toStartWith('CORS_ORIGINS')
    expect(problems({ PASSWORD_MIN_LENGTH: '20', ADMIN_USERNAME: 'boss', ADMIN_PASSWORD: 'fifteen-chars!!' })[0]).toStartWith('ADMIN_PASSWORD')
  })

  test('booleans read true/false and 1/0; empty values mean the default', () => {
    expect(loadConfig({ TRUST_PROXY: '1', SEED_DEMO_DATA: 'true', SWAGGER_ENABLED: '0' })).toMatchObject({ trustProxy: true, seedDemoData: true, swaggerEnabled: false })
    expect(loadConfig({ PORT: '', HASH_CONCURRENCY: '' }).port).toBe(3000)
  })

  test('the service refuses to start on a bad setting, naming it, with a non-zero exit', async () => {
    const child = Bun.spawn([process.execPath, 'src/index.ts'], { env: { ...Bun.env, PORT: 'not-a-port', JWT_SECRET: 'x' }, stderr: 'pipe', stdout: 'pipe' })
    const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()])
    expect(code).toBe(2)
    expect(stderr).toContain('PORT: expected an integer')
    expect(stderr).toContain('JWT_SECRET: expected at least 32 characters')
    expect(stderr).not.toContain('    at ')
  })

  test('AMQP_EVENTS is checked at start-up: its form with the settings, its event types as the relay starts; the bad one named, the secret URL never shown', async () => {
    const start = async (events: string) => {
      const env = { ...Bun.env, JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'sqlite::memory:', AMQP_URL: 'amqp://user:hunter2-secret@127.0.0.1:1', AMQP_EVENTS: events }
      const child = Bun.spawn([process.execPath, 'src/index.ts'], { env, stderr: 'pipe', stdout: 'pipe' })
      const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()])
      return { code, stderr }
    }
    const badForm = await start('rooms.member_joined,payments.*')
    expect(badForm.code).toBe(2)
    expect(badForm.stderr).toContain('AMQP_EVENTS: expected text matching')
    const badType = await start('rooms.member_joined,rooms.room_exploded')
    expect(badType.code).toBe(2)
    expect(badType.stderr).toContain('AMQP_EVENTS: "room_exploded" is not an event type')
    for (const { stderr } of [badForm, badType]) expect(stderr).not.toContain('hunter2')
  })

  test('REALTIME_BUS=nats is checked: it needs PostgreSQL, NATS_URL and NATS_SUBJECT_PREFIX their form; a NATS that does not answer stops the start, named without its password', async () => {
    expect(problems({ REALTIME_BUS: 'nats' })[0]).toStartWith('REALTIME_BUS=nats needs PostgreSQL')
    const bad = problems({ REALTIME_BUS: 'redis', NATS_URL: 'http://nats:4222', NATS_SUBJECT_PREFIX: 'a.b' }).map((line) => line.split(':')[0])
    expect(bad).toEqual(['REALTIME_BUS', 'NATS_URL', 'NATS_SUBJECT_PREFIX'])
    const postgres = 'postgres://postgres@127.0.0.1:5432/postgres'
    expect(loadConfig({ DATABASE_URL: postgres, REALTIME_BUS: 'nats', NATS_URL: 'nats://a:4222,nats://b:4222' }).bus).toEqual({
      engine: 'nats',
      url: 'nats://a:4222,nats://b:4222',
      prefix: 'sim_gateway',
      lookInterval: 1000,
    })
    if (!Bun.env.TEST_DATABASE_URL) return
    const env = { ...Bun.env, PORT: '0', JWT_SECRET: 'x'.repeat(32), DATABASE_URL: Bun.env.TEST_DATABASE_URL, REALTIME_BUS: 'nats', NATS_URL: 'nats://user:hunter2-secret@127.0.0.1:1' }
    const child = Bun.spawn([process.execPath, 'src/index.ts'], { env, stderr: 'pipe', stdout: 'pipe' })
    const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()])
    expect(code).toBe(2)
    expect(stderr).toContain('NATS_URL: no NATS answers at 127.0.0.1:1')
    expect(stderr).not.toContain('hunter2')
  })

  test('REALTIME_MAX_SOCKETS is held under the file limit (ulimit -n), with files to spare: past it a client would wait on a connection never accepted', () => {
    expect(openFileLimit()).toBe(Number(Bun.spawnSync(['sh', '-c', 'ulimit -n']).stdout.toString()))
    expect(socketsWithinFileLimit(50_000, 20_000)).toBe(19_000)
    expect(socketsWithinFileLimit(50_000, 1024)).toBe(921)
    expect(socketsWithinFileLimit(500, 20_000)).toBe(500)
    expect(socketsWithinFileLimit(50_000, undefined)).toBe(50_000)
  })

  test('.env.example documents every setting with its default', async () => {
    const text = await Bun.file('.env.example').text()
    const documented = new Map(
      text
        .split('\n')
        .filter((line) => /^[A-Z0-9_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    )
    expect([...documented.keys()].sort()).toEqual(Object.keys(EnvSchema.properties).sort())
    for (const [key, schema] of Object.entries(EnvSchema.properties)) {
      const fallback = (schema as { default?: unknown }).default
      if (key === 'HASH_CONCURRENCY') continue // the default is the machine's core count
      expect({ key, value: documented.get(key) }).toEqual({ key, value: fallback === undefined ? '' : String(fallback) })
    }
  })
})
