import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SQL } from 'bun'

/** User and system CPU time a process has used so far, from /proc (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuTimes(pid)
  return user + system
}

/** The same, apart: the process's own work, and the kernel's for it (sockets, files). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }
}

/** The machine's idle and total CPU time so far, in clock ticks, from /proc/stat: idle / total over a run is how much was left. */
export function machineTicks(): { idle: number; total: number } {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number)
  return { idle: ticks[3]! + ticks[4]!, total: ticks.reduce((sum, tick) => sum + tick, 0) }
}

/** Resident memory of a process, in MB. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? 0) / 1024
}

export async function waitFor(url: string, pauseMs = 20): Promise<void> {
  for (let attempt = 0; attempt < 30_000 / pauseMs; attempt++) {
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    await Bun.sleep(pauseMs)
  }
  throw new Error(`${url} never answered`)
}

/** The value below which a share `q` of `values` lies (NaN for none). */
export const quantile = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))] ?? Number.NaN

/** Replaces the section `## <title>` of the results file (or adds it at the end) with `lines`. */
export function writeSection(file: string, title: string, lines: string[]): void {
  const previous = readFileSync(file, 'utf8')
  const start = previous.indexOf(`## ${title}`)
  const end = start === -1 ? -1 : previous.indexOf('\n## ', start + 1)
  const section = [`## ${title}`, '', ...lines].join('\n')
  writeFileSync(file, start === -1 ? `${previous.trimEnd()}\n\n${section}` : `${previous.slice(0, start)}${section}${end === -1 ? '\n' : previous.slice(end)}`)
  console.log(`\nwritten to ${file}`)
}

/** A fresh `work` folder with the service compiled into it, as users run it; answers the binary's path. */
export function buildBinary(work: string): string {
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  console.log('== building the binary')
  const binary = join(work, 'sim-gateway')
  const built = Bun.spawnSync([process.execPath, 'scripts/build.ts', '--outfile', binary], { stdout: 'pipe', stderr: 'pipe' })
  if (built.exitCode !== 0) throw new Error(built.stderr.toString())
  return binary
}

/** A new, empty database on the PostgreSQL at `url`, named `<prefix>_<time>`; answers its URL. */
export async function freshPostgresDatabase(url: string, prefix: string): Promise<string> {
  const name = `${prefix}_${Date.now()}`
  const admin = new SQL(url, { max: 1 })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  await admin.close()
  const database = new URL(url)
  database.pathname = `/${name}`
  return database.toString()
}

const started: Bun.Subprocess[] = []
process.on('exit', () => started.forEach((child) => child.kill('SIGKILL')))

/** The compiled service (or another command) on 127.0.0.1:`port` with `env`, killed when the benchmark exits; answers once /health does. */
export async function startBinary(binary: string | string[], port: number, env: Record<string, string>) {
  const child = Bun.spawn(typeof binary === 'string' ? [binary] : binary, { env: { PORT: String(port), HOST: '127.0.0.1', ...env }, stdout: 'ignore', stderr: 'inherit' })
  started.push(child)
  const base = `http://127.0.0.1:${port}`
  await waitFor(`${base}/health`)
  return { child, base }
}

/** The JSON lines a process prints, one at a time. */
export async function* jsonLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder()
  let text = ''
  for await (const chunk of stream) {
    text += decoder.decode(chunk)
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n')) {
      yield JSON.parse(text.slice(0, end))
      text = text.slice(end + 1)
    }
  }
}

export async function nextLine(lines: AsyncGenerator<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const { value, done } = await lines.next()
  if (done) throw new Error('a player process ended early')
  return value
}
