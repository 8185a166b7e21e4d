import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closeTestResources, createTestApp } from '../support/harness'

// What operators of a Prometheus and Grafana stack get from deploy/: the alert rules and their unit
// tests, the dashboard's queries, and the /metrics text itself, all checked by Debian's promtool
// (.ci/run installs the prometheus package), and the compose profile that starts both.

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
  const t = await createTestApp({ LOGIN_MAX_FAILURES: '1' })
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

  test('the dashboard is provisioned from Prometheus beside it, with an instance filter on every panel', async () => {
    expect(dashboard).toMatchObject({ uid: 'sim-gateway', title: 'Simulator Gateway' })
    for (const query of queries) expect(query).toContain('instance=~"$instance"')
    const datasource = Bun.YAML.parse(await Bun.file('deploy/grafana/provisioning/datasources/prometheus.yml').text()) as any
    expect(datasource.datasources[0]).toMatchObject({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' })
    for (const panel of dashboard.panels) expect(panel.datasource.uid).toBe('prometheus')
  })

  test('docker compose --profile monitoring adds Prometheus with the alert rules and Grafana with the dashboard, only on request', async () => {
    const compose = Bun.YAML.parse(await Bun.file('compose.yaml').text()) as any
    const { prometheus, grafana, gateway } = compose.services
    expect(gateway.profiles).toBeUndefined()
    expect(prometheus.profiles).toEqual(['monitoring'])
    expect(grafana.profiles).toEqual(['monitoring'])
    const mounted = (service: any) => service.volumes.map((volume: string) => volume.split(':')[0]).filter((source: string) => source.startsWith('./'))
    for (const source of [...mounted(prometheus), ...mounted(grafana)]) expect({ source, exists: existsSync(source) }).toEqual({ source, exists: true })
    expect(prometheus.volumes).toContain('./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro')
    const scrapeConfig = Bun.YAML.parse(await Bun.file('deploy/prometheus/prometheus.yml').text()) as any
    expect(scrapeConfig.scrape_configs[0].static_configs[0].targets).toEqual(['gateway:3000'])
  })
})
