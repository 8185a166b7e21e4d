import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from './harness'

let built: Promise<string> | undefined

/** The service compiled as users get it (scripts/build.ts), once per test run, in a folder of its own. */
export function compiledBinary(): Promise<string> {
  built ??= (async () => {
    const binary = join(mkdtempSync(join(tmpdir(), 'sgw-binary-')), 'sim-gateway')
    const build = Bun.spawn([process.execPath, 'scripts/build.ts', '--outfile', binary], { stdout: 'pipe', stderr: 'pipe' })
    if ((await build.exited) !== 0) throw new Error(`build failed:\n${await new Response(build.stderr).text()}`)
    return binary
  })()
  return built
}

export async function freePort(): Promise<number> {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = probe
  probe.stop(true)
  return port
}

/** Waits until `baseUrl/health` answers, failing at once if the process exits. */
export async function waitForHealth(baseUrl: string, child: Bun.Subprocess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) return
    } catch {}
    await Bun.sleep(50)
  }
  throw new Error('the service did not become healthy')
}

/** Runs the compiled binary on a free port of 127.0.0.1 with `env`, until the test run ends. */
export async function startBinary(env: Record<string, string>) {
  const port = await freePort()
  const child = Bun.spawn([await compiledBinary()], { env: { ...env, PORT: String(port), HOST: '127.0.0.1' }, stdout: 'ignore', stderr: 'inherit' })
  process.once('exit', () => child.kill('SIGKILL'))
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHealth(baseUrl, child)
  return { child, port, baseUrl, client: createClient((request) => fetch(request), baseUrl) }
}
