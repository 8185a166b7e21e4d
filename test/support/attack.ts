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

/** Asks /health every 10 ms until `attack` settles; resolves to each answer's latency in milliseconds. */
export async function healthLatencies(baseUrl: string, attack: Promise<unknown>): Promise<number[]> {
  let over = false
  attack.finally(() => {
    over = true
  })
  const latencies: number[] = []
  while (!over) {
    const started = performance.now()
    const response = await fetch(`${baseUrl}/health`)
    if (!response.ok) throw new Error(`/health answered ${response.status}`)
    latencies.push(performance.now() - started)
    await Bun.sleep(10)
  }
  return latencies
}

/** The value at quantile `q` (0..1) of some numbers. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}
