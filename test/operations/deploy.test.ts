import { afterAll, describe, expect, test } from 'bun:test'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { EnvSchema } from '../../src/config'

// No container engine runs here, so the image and compose files are checked for what breaks them in
// practice: the build context, the cross-compiled binaries, and the settings and safety options.

const SETTINGS = Object.keys(EnvSchema.properties)
const scratch = mkdtempSync(join(tmpdir(), 'sgw-deploy-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const yaml = async (path: string) => Bun.YAML.parse(await Bun.file(path).text()) as any

describe('compose files', () => {
  test('the gateway pulls from ghcr.io, can build locally, runs read-only with a tmpfs /tmp, a data volume and the health check', async () => {
    const compose = await yaml('compose.yaml')
    const gateway = compose.services.gateway
    expect(gateway.image).toContain('ghcr.io/')
    expect(gateway.build.context).toBe('.')
    expect(gateway.read_only).toBe(true)
    expect(gateway.tmpfs).toContain('/tmp')
    expect(gateway.volumes).toContain('gateway-data:/data')
    expect(Object.keys(compose.volumes)).toContain('gateway-data')
    expect(gateway.healthcheck.test).toEqual(['CMD', '/sim-gateway', '--healthcheck'])
    expect(gateway.cap_drop).toEqual(['ALL'])
  })

  test('every setting of the service is passed through from the environment or .env', async () => {
    const environment = (await yaml('compose.yaml')).services.gateway.environment
    expect(Object.keys(environment).sort()).toEqual([...SETTINGS].sort())
    for (const key of SETTINGS) expect(environment[key]).toStartWith(`\${${key}:-`)
    expect(environment.DATABASE_URL).toBe('${DATABASE_URL:-sqlite:/data/sim-gateway.sqlite}')
  })

  test('the PostgreSQL override adds a healthy database and points the gateway at it', async () => {
    const override = await yaml('compose.postgres.yaml')
    expect(override.services.postgres.image).toStartWith('postgres:')
    expect(override.services.postgres.healthcheck.test[1]).toBe('pg_isready')
    expect(override.services.gateway.environment.DATABASE_URL).toStartWith('postgres://')
    expect(override.services.gateway.depends_on.postgres.condition).toBe('service_healthy')
  })

  test('the many-instances file: instances on PostgreSQL woken by NATS, reached only through the balancer, with room for their connections', async () => {
    const scale = await yaml('compose.scale.yaml')
    const { gateway, balancer, nats, postgres } = scale.services
    expect(gateway.environment).toMatchObject({ REALTIME_BUS: 'nats', NATS_URL: 'nats://nats:4222', TRUST_PROXY: 'true' })
    expect(gateway.environment.DATABASE_URL).toStartWith('postgres://')
    // Scaled with --scale: no host port of its own, settings from .env like the single instance's.
    expect(gateway.ports).toBeUndefined()
    expect(gateway.env_file[0].path).toBe('.env')
    // Each socket is a file: the cap on sockets follows the file limit.
    expect(gateway.ulimits.nofile.soft).toBeGreaterThanOrEqual(20_000)
    expect(balancer.volumes).toContain('./deploy/nginx/balancer.conf:/etc/nginx/nginx.conf:ro')
    expect(await Bun.file('deploy/nginx/balancer.conf').text()).toContain('server gateway:3000')
    expect(nats.image).toStartWith('nats:')
    expect(postgres.command.join(' ')).toContain('max_connections=')
  })
})

describe('Dockerfile', () => {
  const stages = async () => (await Bun.file('Dockerfile').text()).split(/^FROM /m).slice(1)

  test('the final stage is distroless nonroot with only the binary: no RUN, exec-form HEALTHCHECK, labels, volume, port', async () => {
    const final = (await stages()).at(-1)!
    expect(final).toStartWith('gcr.io/distroless/base-debian12:nonroot')
    expect(final).not.toMatch(/^RUN /m)
    expect(final).toMatch(/^USER 65532:65532$/m)
    expect(final).toMatch(/^HEALTHCHECK .*CMD \["\/sim-gateway", "--healthcheck"\]$/m)
    expect(final).toMatch(/^ENTRYPOINT \["\/sim-gateway"\]$/m)
    expect(final).toMatch(/^EXPOSE 3000$/m)
    expect(final).toMatch(/^VOLUME \["\/data"\]$/m)
    for (const label of ['source', 'version', 'revision']) expect(final).toContain(`org.opencontainers.image.${label}=`)
  })

  test('the build stage runs on the build platform and cross-compiles for the target one', async () => {
    const build = (await stages())[0]!
    expect(build).toStartWith('--platform=$BUILDPLATFORM oven/bun:')
    expect(build).toContain('bun-linux-x64')
    expect(build).toContain('bun-linux-arm64')
    // The data volume starts private: the database holds hashes, invitation tokens, maybe the JWT secret.
    expect(build).toContain('mkdir -m 0700 -p /out/data')
  })

  test('the build stage works from exactly the files .dockerignore lets in, for amd64 and arm64', async () => {
    const context = join(scratch, 'context')
    const admitted = (await Bun.file('.dockerignore').text()).split('\n').filter((line) => line.startsWith('!'))
    for (const path of admitted.map((line) => line.slice(1).replace(/\/$/, ''))) {
      mkdirSync(join(context, dirname(path)), { recursive: true })
      cpSync(path, join(context, path), { recursive: true })
    }
    const run = (command: string[]) => {
      const result = Bun.spawnSync(command, { cwd: context, stdout: 'pipe', stderr: 'pipe' })
      if (result.exitCode !== 0) throw new Error(`${command.join(' ')}:\n${result.stderr.toString()}`)
    }
    run([process.execPath, 'install', '--frozen-lockfile', '--production', '--ignore-scripts'])
    const machines = { 'bun-linux-x64': 0x3e, 'bun-linux-arm64': 0xb7 }
    for (const [target, machine] of Object.entries(machines)) {
      const outfile = join(scratch, target)
      run([process.execPath, 'scripts/build.ts', '--target', target, '--outfile', outfile])
      const header = new Uint8Array(await Bun.file(outfile).slice(0, 20).arrayBuffer())
      expect([...header.slice(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]) // ELF
      expect(header[18]).toBe(machine)
    }
  }, 120_000)
})
