// Asks <baseUrl>/health every 10 ms, each time whether the last answer came or not, until it is
// sent SIGTERM; then prints the latencies of the answers (milliseconds) as one JSON array. A process
// of its own: the test process's own pauses (its collector, after a long run) must not be counted
// as the service's. `bun test/support/health-poller.ts <baseUrl>`
export {}

const [baseUrl] = process.argv.slice(2) as [string]
const answers: Array<Promise<number>> = []
let stopping = false

async function ask(): Promise<number> {
  const started = performance.now()
  const response = await fetch(`${baseUrl}/health`)
  await response.arrayBuffer()
  if (!response.ok) throw new Error(`/health answered ${response.status}`)
  return performance.now() - started
}

process.on('SIGTERM', async () => {
  stopping = true
  const latencies = await Promise.all(answers)
  process.stdout.write(`${JSON.stringify(latencies)}\n`, () => process.exit(0))
})
console.error('polling')
while (!stopping) {
  answers.push(ask())
  await Bun.sleep(10)
}
