import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closeTestResources, createTestApp } from '../support/harness'

// What operators of the monitoring profile get from deploy/: the alert rules and their unit tests,
// the dashboard's queries, and the /metrics text itself, all checked by Debian's promtool (.ci/run
// installs the prometheus package); the compose files, checked against the compose specification's
// schema by dclint (no Docker engine runs here); and Loki, Alloy and Jaeger wired into one Grafana.
// Loki's and Alloy's own checkers are Go programs neither Debian nor npm ship: their files are checked
// here for what joins them up (references, fields, data source uids), not run.

afterAll(closeTestResources)
const scratch = mkdtempSync(join(tmpdir(), 'sgw-monitoring-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const PROMTOOL = '/usr/bin/promtool'
const available = existsSync(PROMTOOL)
if (!available && Bun.env.REQUIRE_BROWSER) throw new Error(`${PROMTOOL} is missing where .ci/run installs it`)
if (!available) console.warn('skipping the promtool checks: apt-get install prometheus')

function promtool(args: string[], stdin?: string) {
  const run = Bun.spawnSync([PROMTOOL, ...args], { stdin: stdin === undefined ? 'ignore' : Buffer.from(stdin), stdout: 'pipe', stderr: 'pipe' })
  return { code: run.exitCode, output: `${run.stdout.toString()}${run.stderr.toString()}` }
}

const dashboard = JSON.parse(await Bun.file('deploy/grafana/dashboards/sim-gateway.json').text())
const queries: string[] = dashboard.panels.flatMap((panel: any) => panel.targets.map((target: any) => target.expr))

/** A scrape of a service that has done a little of everything. */
async function scrape(): Promise<string> {
  // With the relay on (its broker unreachable, which it counts too), so that its metrics are there.
  const t = await createTestApp({ LOGIN_MAX_FAILURES: '1', AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' })
  const user = await t.client.register('scraped_user')
  await t.client.post('/rooms', { room_name: 'scraped room' }, user.access)
  await t.client.post('/auth/login', { username: 'scraped_user', password: 'wrong-password' })
  await Bun.sleep(20)
  return (await t.app.handle(new Request('http://localhost/metrics'))).text()
}

describe.if(available)('Prometheus files, checked by promtool', () => {
  test('the alert rules are valid, and their unit tests pass (each alert fires on its series, and not before)', () => {
    for (const args of [['check', 'rules', 'deploy/prometheus/alerts.yml'], ['test', 'rules', 'deploy/prometheus/alerts.test.yml'], ['check', 'config', 'deploy/prometheus/prometheus.yml']]) {
      const run = promtool(args)
      expect({ args, code: run.code, output: run.output }).toEqual({ args, code: 0, output: expect.stringContaining('SUCCESS') })
    }
  })

  test('the /metrics text passes promtool check metrics', async () => {
    const run = promtool(['check', 'metrics'], await scrape())
    expect({ code: run.code, output: run.output.trim() }).toEqual({ code: 0, output: '' })
  })

  test("every query of the Grafana dashboard is valid PromQL (as recording rules, the way promtool parses them)", () => {
    const concrete = (query: string) => query.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*')
    const rules = { groups: [{ name: 'dashboard', rules: queries.map((query, index) => ({ record: `dashboard:query_${index}`, expr: concrete(query) })) }] }
    const file = join(scratch, 'dashboard-rules.yml')
    writeFileSync(file, JSON.stringify(rules))
    const run = promtool(['check', 'rules', file])
    expect({ code: run.code, output: run.output }).toEqual({ code: 0, output: expect.stringContaining(`SUCCESS: ${queries.length} rules found`) })
  })
})

describe('the Grafana dashboard and the compose monitoring profile', () => {
  test('every metric the dashboard and the alerts query is one the service exports', async () => {
    const exported = new Set([...(await scrape()).matchAll(/^# TYPE (\w+) /gm)].map((match) => match[1]!))
    exported.add('up') // Prometheus's own, per target.
    const alerts = await Bun.file('deploy/prometheus/alerts.yml').text()
    const referenced = new Set(
      [...queries.join('\n').matchAll(/\b([a-z_]+)\{/g), ...alerts.matchAll(/\b([a-z_]+)\{job=/g)].map((match) => match[1]!.replace(/_(bucket|sum|count)$/, '')),
    )
    expect([...referenced].filter((name) => !exported.has(name))).toEqual([])
    expect(referenced.size).toBeGreaterThan(10)
  })

  test("the dashboard is a Dashboard by Grafana's own schema (@grafana/schema, checked by tsc, unknown keys refused), and a wrong one is caught", () => {
    const check = (json: string) => {
      const folder = mkdtempSync(join(scratch, 'dashboard-'))
      // An object literal typed where it stands: its strings checked against Grafana's unions, its keys against its types.
      writeFileSync(join(folder, 'dashboard.ts'), `import type { Dashboard } from '@grafana/schema'\nexport const dashboard: Dashboard = ${json}\n`)
      const config = { compilerOptions: { strict: true, noEmit: true, module: 'esnext', moduleResolution: 'bundler', target: 'es2022', skipLibCheck: true, typeRoots: [] }, files: ['dashboard.ts'] }
      writeFileSync(join(folder, 'tsconfig.json'), JSON.stringify(config))
      // Resolved from this project's node_modules, where the folder is linked.
      symlinkSync(join(process.cwd(), 'node_modules'), join(folder, 'node_modules'))
      const run = Bun.spawnSync([process.execPath, 'node_modules/typescript/bin/tsc', '-p', join(folder, 'tsconfig.json')], { stdout: 'pipe', stderr: 'pipe' })
      return { code: run.exitCode, output: run.stdout.toString().trim() }
    }
    expect(check(JSON.stringify(dashboard))).toEqual({ code: 0, output: '' })
    const wrong = structuredClone(dashboard)
    wrong.panels[0].gridPos.w = 'wide'
    wrong.panels[1].legendMode = 'table'
    const refused = check(JSON.stringify(wrong))
    expect(refused.code).not.toBe(0)
    expect(refused.output).toContain('\'"legendMode"\' does not exist')
    expect(refused.output).toContain("Type 'string' is not assignable to type 'number'")
  })

  test('the dashboard is provisioned from Prometheus beside it, with an instance filter on every panel', async () => {
    expect(dashboard).toMatchObject({ uid: 'sim-gateway', title: 'Simulator Gateway' })
    for (const query of queries) expect(query).toContain('instance=~"$instance"')
    const datasource = Bun.YAML.parse(await Bun.file('deploy/grafana/provisioning/datasources/prometheus.yml').text()) as any
    expect(datasource.datasources[0]).toMatchObject({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' })
    for (const panel of dashboard.panels) expect(panel.datasource.uid).toBe('prometheus')
  })

  test('docker compose --profile monitoring adds Prometheus, Grafana, Loki, Alloy and Jaeger, only on request, each with the files it mounts', async () => {
    const compose = Bun.YAML.parse(await Bun.file('compose.yaml').text()) as any
    const { prometheus, gateway, rabbitmq, ...others } = compose.services
    expect(gateway.profiles).toBeUndefined()
    // The broker has a profile of its own; its management UI is for this machine only too.
    expect(rabbitmq.profiles).toEqual(['broker'])
    for (const port of rabbitmq.ports) expect(port).toStartWith('127.0.0.1:')
    expect(Object.keys(others).toSorted()).toEqual(['alloy', 'grafana', 'jaeger', 'loki'])
    const mounted = (service: any) => (service.volumes ?? []).map((volume: string) => volume.split(':')[0]).filter((source: string) => source.startsWith('./'))
    for (const service of [prometheus, ...Object.values(others)]) {
      expect(service.profiles).toEqual(['monitoring'])
      for (const source of mounted(service)) expect({ source, exists: existsSync(source) }).toEqual({ source, exists: true })
      // The UIs on this machine only.
      for (const port of service.ports ?? []) expect(port).toStartWith('127.0.0.1:')
    }
    expect(prometheus.volumes).toContain('./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro')
    const scrapeConfig = Bun.YAML.parse(await Bun.file('deploy/prometheus/prometheus.yml').text()) as any
    expect(scrapeConfig.scrape_configs[0].static_configs[0].targets).toEqual(['gateway:3000'])
  })

  test('both compose files follow the compose specification (dclint validates against its JSON schema), and a wrong key is caught', () => {
    const lint = (...files: string[]) => Bun.spawnSync(['node_modules/.bin/dclint', ...files, '--quiet', '--disable-rule', 'no-build-and-image'], { stdout: 'pipe', stderr: 'pipe' })
    const ours = lint('compose.yaml', 'compose.postgres.yaml')
    expect({ code: ours.exitCode, output: ours.stdout.toString().trim() }).toEqual({ code: 0, output: '' })
    const wrong = join(scratch, 'compose.yaml')
    writeFileSync(wrong, 'services:\n  gateway:\n    image: sim-gateway\n    porst: ["3000:3000"]\n')
    const refused = lint(wrong)
    expect(refused.exitCode).not.toBe(0)
    expect(refused.stdout.toString()).toContain('invalid-schema')
  })

  test('Grafana has Prometheus, Loki and Jaeger: a log line links to its trace, a trace to its log lines', async () => {
    const folder = 'deploy/grafana/provisioning/datasources'
    const sources = (await Promise.all(['prometheus.yml', 'loki.yml', 'jaeger.yml'].map(async (file) => (Bun.YAML.parse(await Bun.file(join(folder, file)).text()) as any).datasources))).flat()
    const byUid = Object.fromEntries(sources.map((source: any) => [source.uid, source]))
    expect(Object.keys(byUid).toSorted()).toEqual(['jaeger', 'loki', 'prometheus'])
    expect(byUid.loki).toMatchObject({ type: 'loki', url: 'http://loki:3100' })
    expect(byUid.loki.jsonData.derivedFields).toEqual([expect.objectContaining({ matcherType: 'label', matcherRegex: 'trace_id', datasourceUid: 'jaeger' })])
    expect(byUid.jaeger).toMatchObject({ type: 'jaeger', url: 'http://jaeger:16686', jsonData: { tracesToLogsV2: { datasourceUid: 'loki' } } })
    // The query's stream selector is the one Alloy labels the gateway's lines with.
    expect(byUid.jaeger.jsonData.tracesToLogsV2.query).toContain('{service="sim-gateway"}')
  })

  test("Alloy's pipeline is whole (every component it sends to is defined) and reads the fields the service writes; Loki keeps them", async () => {
    const alloy = await Bun.file('deploy/alloy/config.alloy').text()
    const defined = new Set([...alloy.matchAll(/^([a-z_.]+) "([a-z_]+)" \{/gm)].map(([, kind, name]) => `${kind}.${name}`))
    const referenced = [...alloy.matchAll(/\b((?:discovery|loki)\.[a-z_]+\.[a-z_]+)\.(?:receiver|output|targets)\b/g)].map(([, component]) => component!)
    expect(referenced.length).toBeGreaterThanOrEqual(4)
    expect(referenced.filter((component) => !defined.has(component))).toEqual([])
    expect(alloy).toContain('url = "http://loki:3100/loki/api/v1/push"')
    expect(alloy).toContain('values = ["com.docker.compose.service=gateway"]')
    // The request log line as the service writes it, with tracing on: what Alloy extracts is in it.
    const source = await Bun.file('src/plugins/observability.ts').text()
    for (const field of ['request_id', 'trace_id']) expect(source).toContain(`"${field}":`)
    expect(alloy).toContain('expressions = { level = "level", request_id = "request_id", trace_id = "trace_id" }')
    const loki = Bun.YAML.parse(await Bun.file('deploy/loki/loki.yaml').text()) as any
    expect(loki.limits_config.allow_structured_metadata).toBe(true)
    expect(loki.schema_config.configs[0]).toMatchObject({ store: 'tsdb', schema: 'v13' })
  })
})
