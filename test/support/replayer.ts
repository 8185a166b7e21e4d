// An attacker's client in a process of its own, so that reading its frames is not what slows the
// test's own measurements: `bun test/support/replayer.ts <baseUrl> <token> <stream> <sockets> <rounds>`
// opens that many sockets of one user, each subscribing to `stream` with `after: 0` and leaving
// again `rounds` times, and prints one JSON line per replay: the `subscribed` frame, and how many
// events came before it.

const [baseUrl, token, stream, sockets, rounds] = process.argv.slice(2) as [string, string, string, string, string]

async function replayer() {
  const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/realtime`)
  let events = 0
  let answer: ((frame: any) => void) | undefined
  socket.onmessage = ({ data }) => {
    const text = String(data)
    // Counted without parsing: the attacker's client must not be what is slow.
    if (text.startsWith('{"op":"event"')) events++
    else answer?.(JSON.parse(text))
  }
  socket.onclose = ({ code }) => answer?.({ op: 'closed', code })
  await new Promise((resolve) => (socket.onopen = resolve))
  const next = (op: string, send?: object) =>
    new Promise<any>((resolve) => {
      answer = (frame) => {
        if (frame.op === op || frame.op === 'closed' || frame.op === 'error') resolve(frame)
      }
      if (send) socket.send(JSON.stringify(send))
    })
  await next('hello')
  await next('ready', { op: 'auth', token })
  for (let round = 0; round < Number(rounds); round++) {
    events = 0
    const subscribed = await next('subscribed', { op: 'subscribe', stream, after: 0 })
    console.log(JSON.stringify({ subscribed, events }))
    // A socket the server closed (a slow consumer, say) ends this replayer's rounds: the line above says how.
    if (subscribed.op === 'closed') return
    await next('unsubscribed', { op: 'unsubscribe', stream })
  }
  socket.close()
}

await Promise.all(Array.from({ length: Number(sockets) }, replayer))
export {}
