import { writeFileSync } from 'node:fs'
import { createClient } from './harness'

/** The service as a real process (`bun src/index.ts`), for what only a process shows: signals, crashes, several instances. */
export interface ServiceProcess {
  child: Bun.Subprocess<'ignore', 'pipe', 'inherit'>
  baseUrl: string
  client: ReturnType<typeof createClient>
  output(): Promise<string>
}

/**
 * Runs `pid` ahead of the rest of the machine (niceness -10; as root only, elsewhere it stays as it
 * is). For measurements of the service's own latency: here PostgreSQL and the test's clients share
 * its two cores, where in production they have machines of their own.
 */
export function favour(pid: number): void {
  Bun.spawnSync(['renice', '-n', '-10', '-p', String(pid)], { stdout: 'ignore', stderr: 'ignore' })
}

/**
 * Linux schedules the processes of each session as one group (autogroup): a process's niceness
 * counts only within its group, and PostgreSQL's backends run in a group of their own, which took
 * /health's p99 past 100 ms while they counted 200,000 rows. Sets the niceness of this test run's
 * group (as root on Linux; elsewhere nothing happens); 0 gives it back.
 */
export function groupNiceness(nice: number): void {
  try {
    writeFileSync('/proc/self/autogroup', String(nice))
  } catch {}
}

export async function freePort(): Promise<number> {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = probe
  probe.stop(true)
  return port
}

export async function startService(env: Record<string, string>, port?: number): Promise<ServiceProcess> {
  port ??= await freePort()
  const child = Bun.spawn([process.execPath, 'src/index.ts'], {
    env: { PATH: Bun.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'inherit',
  })
  const baseUrl = `http://127.0.0.1:${port}`
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`)
    if (attempt > 300) throw new Error('the service did not become healthy')
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) break
    } catch {}
    await Bun.sleep(20)
  }
  let text: Promise<string> | undefined
  return {
    child,
    baseUrl,
    client: createClient((request) => fetch(request), baseUrl),
    output: () => (text ??= new Response(child.stdout).text()),
  }
}
