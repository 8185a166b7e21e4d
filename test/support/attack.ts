import { favour } from './process'

/** What an attacker does that a well-behaved client never would. */

/**
 * Declares a JSON body of `length` bytes and sends it one byte every `intervalMs`, over a raw
 * socket; resolves to whatever the server answered once it answers or closes (within 30 s).
 */
export async function slowUpload(baseUrl: string, path: string, length: number, intervalMs: number): Promise<string> {
  const { hostname, port } = new URL(baseUrl)
  let answer = ''
  let finished: () => void = () => {}
  const done = new Promise<void>((resolve) => {
    finished = resolve
  })
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_, chunk) {
        answer += chunk.toString()
        if (answer.includes('\r\n\r\n')) finished()
      },
      close: () => finished(),
      error: () => finished(),
    },
  })
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n{`)
  const trickle = setInterval(() => socket.write(' '), intervalMs)
  const giveUp = setTimeout(finished, 30_000)
  await done
  clearInterval(trickle)
  clearTimeout(giveUp)
  await Bun.sleep(20)
  socket.end()
  return answer
}

/**
 * Asks /health every 10 ms until `attack` settles, each time whether the last answer came or not
 * (as users keep arriving): a service stalled for 400 ms leaves some 40 slow answers, not one. The
 * asking runs in a process of its own (health-poller.ts), so that this one's pauses are not
 * counted. Resolves to each answer's latency in milliseconds.
 */
export async function healthLatencies(baseUrl: string, attack: Promise<unknown>): Promise<number[]> {
  const poller = Bun.spawn([process.execPath, 'test/support/health-poller.ts', baseUrl], { stdout: 'pipe', stderr: 'pipe' })
  favour(poller.pid)
  const started = poller.stderr.getReader()
  await started.read()
  started.releaseLock()
  await attack.catch(() => {})
  poller.kill('SIGTERM')
  const [output, status] = await Promise.all([new Response(poller.stdout).text(), poller.exited])
  if (status !== 0) throw new Error(`the /health poller failed (${status}): ${await new Response(poller.stderr).text()}`)
  return JSON.parse(output) as number[]
}

/** The value at quantile `q` (0..1) of some numbers. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}
