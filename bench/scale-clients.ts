/**
 * One process of the scale simulation's players (bench/scale.ts starts several: a process may hold
 * only as many sockets as its file limit). Reads its players from the file named by its argument;
 * each connects to its home instance, authenticates and follows its user's stream (and, for the
 * active ones, its room's and its room's chat). When a socket drops (its instance was killed) the
 * player connects to the next instance that answers and resumes every stream from where it stood.
 *
 * Commands on stdin, one answer line (JSON) each on stdout:
 *   connect        all players connect, `wave` at a time; answers when all are subscribed
 *   count          events received so far (for CPU per delivery)
 *   resumed        how many players dropped since the start, and how many of them resumed
 *   report         the latencies of chat messages (POST to socket) and the resumes after drops
 *   verify <file>  every stream's last number in the log, from the file: how many players hold
 *                  each of their streams exactly (every event once, in order, up to the log's last)
 */
interface Plan {
  ports: number[]
  players: Array<{ token: string; userId: string; roomId?: string; home: number }>
}

interface Followed {
  /** The number of the last event held (from the first `subscribed`, then each event). */
  last?: number
  doubled: number
  gaps: number
  /** Subscribed since the last connect. */
  subscribed: boolean
  unrecovered: number
}

export {}

const plan = (await Bun.file(process.argv[2]!).json()) as Plan
const CONNECT_PATIENCE_MS = 15_000
let received = 0
/** Chat messages received: when, and how long after their POST was sent. */
const latencies: Array<[at: number, ms: number]> = []
const resumes: Array<{ droppedAt: number; resumedAt?: number }> = []
const now = () => performance.timeOrigin + performance.now()

/**
 * Destination addresses, many of them: the kernel finds a free source port per destination, so
 * 100,000 connections to a few addresses would run out of ports (and search for them ever longer).
 */
const hostOf = (index: number) => `127.${1 + ((index >> 8) % 250)}.${index % 256}.1`

class Player {
  readonly streams = new Map<string, Followed>()
  epoch?: string
  socket?: WebSocket
  target: number
  attempts = 0
  resume?: { droppedAt: number; resumedAt?: number }

  constructor(
    readonly index: number,
    readonly account: Plan['players'][number],
  ) {
    this.target = account.home
    const names = [`user:${account.userId}`, ...(account.roomId ? [`room:${account.roomId}`, `chat:${account.roomId}`] : [])]
    for (const name of names) this.streams.set(name, { doubled: 0, gaps: 0, subscribed: false, unrecovered: 0 })
  }

  connect(onSubscribed: () => void): void {
    for (const followed of this.streams.values()) followed.subscribed = false
    let pending = this.streams.size
    const socket = new WebSocket(`ws://${hostOf(this.index)}:${plan.ports[this.target]}/realtime`)
    this.socket = socket
    // An instance that takes the connection and never answers: given up, and another one tried.
    const patience = setTimeout(() => pending > 0 && socket.close(), CONNECT_PATIENCE_MS)
    socket.onmessage = (message) => {
      const frame = JSON.parse(String(message.data))
      if (frame.op === 'hello') {
        socket.send(JSON.stringify({ op: 'auth', token: this.account.token }))
        for (const [stream, { last }] of this.streams) socket.send(JSON.stringify({ op: 'subscribe', stream, after: last, epoch: last === undefined ? undefined : this.epoch }))
      } else if (frame.op === 'ready') this.epoch = frame.epoch
      else if (frame.op === 'event') this.#event(frame)
      else if (frame.op === 'subscribed') {
        const followed = this.streams.get(frame.stream)!
        if (followed.last === undefined) followed.last = frame.last_seq
        else if (!frame.recovered) followed.unrecovered++
        followed.subscribed = true
        if (--pending === 0) {
          clearTimeout(patience)
          this.attempts = 0
          if (this.resume) this.resume.resumedAt ??= now()
          onSubscribed()
        }
      }
    }
    socket.onclose = () => {
      if (this.socket !== socket || stopping) return
      // Its instance died (or refused it): the next one at once, then a little later each round.
      const wasLive = pending === 0
      if (wasLive) {
        this.resume = { droppedAt: now() }
        resumes.push(this.resume)
      }
      // The players of a dead instance spread over the others, as a balancer's least_conn would spread them.
      const others = plan.ports.length - 1
      this.target = (this.target + 1 + (this.attempts === 0 ? this.index % others : 0)) % plan.ports.length
      this.attempts++
      setTimeout(() => this.connect(wasLive ? () => {} : onSubscribed), this.attempts > plan.ports.length ? 200 : 0)
    }
  }

  #event(frame: { stream: string; seq: number; event: { type: string; body?: string } }): void {
    received++
    const followed = this.streams.get(frame.stream)
    if (!followed || followed.last === undefined) return
    if (frame.seq <= followed.last) followed.doubled++
    else if (frame.seq > followed.last + 1) followed.gaps++
    followed.last = Math.max(followed.last, frame.seq)
    if (frame.event.type === 'message_posted' && frame.event.body?.startsWith('t=')) {
      const at = now()
      latencies.push([at, at - Number(frame.event.body.slice(2))])
    }
  }
}

let stopping = false
const players = plan.players.map((account, index) => new Player(index, account))

function connectAll(wave: number): Promise<void> {
  return new Promise((resolve) => {
    let pending = players.length
    let next = 0
    const done = () => {
      if (--pending === 0) resolve()
      else if (next < players.length) players[next++]!.connect(done)
    }
    while (next < Math.min(wave, players.length)) players[next++]!.connect(done)
  })
}

const answer = (value: unknown) => console.log(JSON.stringify(value))

for await (const line of console) {
  const [command, argument] = line.trim().split(' ')
  if (command === 'connect') {
    await connectAll(Number(argument ?? 500))
    answer({ connected: players.length })
  } else if (command === 'count') answer({ received })
  else if (command === 'resumed') answer({ dropped: resumes.length, resumed: resumes.filter((resume) => resume.resumedAt !== undefined).length })
  else if (command === 'report') answer({ latencies, resumes })
  else if (command === 'verify') {
    const heads = (await Bun.file(argument!).json()) as Record<string, number>
    let exact = 0
    const failures: string[] = []
    for (const player of players) {
      const wrong = [...player.streams].find(
        ([stream, followed]) => followed.doubled > 0 || followed.gaps > 0 || followed.unrecovered > 0 || followed.last !== (heads[stream] ?? 0) || !followed.subscribed,
      )
      if (!wrong) exact++
      else if (failures.length < 3) failures.push(`${wrong[0]}: ${JSON.stringify({ ...wrong[1], log: heads[wrong[0]] ?? 0 })}`)
    }
    answer({ exact, players: players.length, failures })
  } else if (command === 'exit') break
}
stopping = true
for (const player of players) player.socket?.close()
process.exit(0)
