// Hostile requests from a process of its own, at the lowest priority, as the other attackers here:
// on this machine's two cores, building and reading them must not be what slows the service's answers.
// `bun test/support/hostile-sender.ts <baseUrl> <requests.json> <connections>` sends the requests of
// the file ({ method, path, headers, body? }) over that many connections at once, and prints one JSON
// array: for each request in order, [its status, whether its body is the error envelope].
export {}

const [baseUrl, file, connections] = process.argv.slice(2) as [string, string, string]
const requests = (await Bun.file(file).json()) as Array<{ method: string; path: string; headers: Record<string, string>; body?: string }>
const answers: Array<[number, boolean]> = new Array(requests.length)
let next = 0

async function sendAll() {
  while (next < requests.length) {
    const index = next++
    const { method, path, headers, body } = requests[index]!
    const response = await fetch(`${baseUrl}${path}`, { method, headers, body })
    const text = await response.text()
    let enveloped = false
    try {
      enveloped = JSON.parse(text)?.success === false
    } catch {}
    answers[index] = [response.status, enveloped]
  }
}

await Promise.all(Array.from({ length: Number(connections) }, sendAll))
console.log(JSON.stringify(answers))
