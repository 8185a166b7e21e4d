/**
 * One process of the resume storm's players (bench/resume.ts starts several: a process may hold
 * only as many sockets as its file limit). Reads its players from the file named by its argument,
 * connects each (auth, then its user's stream and its room's), prints `ready` with their positions
 * once all are subscribed; on each `resume` from stdin reconnects them all at once (their last
 * connections having died with their instance), each subscribing `after` where it stood, and
 * prints when the last was subscribed and how many got exactly what they missed. A storm may stop
 * short of subscribing, to time the handshake or the authentication alone.
 */
interface Account {
  token: string
  userId: string
  roomId: string
}

interface Plan {
  port: number
  players: Account[]
}

/** How far a reconnection goes: the handshake and `hello`, then authenticated, then the whole resume. */
type Stage = 'upgrade' | 'auth' | 'resume'

interface Followed {
  stream: string
  after?: number
  /** Numbers of the events received since the last connect. */
  seqs: number[]
  subscribed?: { last_seq: number; recovered: boolean }
}

class Player {
  streams: Followed[]
  epoch?: string
  socket?: WebSocket
  closedEarly?: string

  constructor(readonly player: Account) {
    this.streams = [
      { stream: `user:${player.userId}`, seqs: [] },
      { stream: `room:${player.roomId}`, seqs: [] },
    ]
  }

  /**
   * Connects and goes as far as `stage`: the server's `hello`, `ready` after authenticating, or
   * every stream subscribed from where it stood; calls `onDone` there.
   */
  connect(host: string, port: number, stage: Stage, onDone: () => void): void {
    for (const followed of this.streams) {
      followed.seqs = []
      followed.subscribed = undefined
    }
    let pending = stage === 'resume' ? this.streams.length : 1
    const socket = new WebSocket(`ws://${host}:${port}/realtime`)
    this.socket = socket
    socket.onmessage = (message) => {
      const frame = JSON.parse(String(message.data))
      if (frame.op === 'hello') {
        if (stage === 'upgrade') {
          pending = 0
          return onDone()
        }
        socket.send(JSON.stringify({ op: 'auth', token: this.player.token }))
        if (stage === 'resume') for (const { stream, after } of this.streams) socket.send(JSON.stringify({ op: 'subscribe', stream, after, epoch: this.epoch }))
      } else if (frame.op === 'ready') {
        this.epoch = frame.epoch
        if (stage === 'auth') {
          pending = 0
          onDone()
        }
      } else if (frame.op === 'event') this.#followed(frame.stream)?.seqs.push(frame.seq)
      else if (frame.op === 'subscribed') {
        this.#followed(frame.stream)!.subscribed = { last_seq: frame.last_seq, recovered: frame.recovered }
        if (--pending === 0) onDone()
      } else if (frame.op === 'error') this.closedEarly = `error ${frame.error}`
    }
    socket.onclose = (event) => {
      if (pending > 0) {
        this.closedEarly ??= `closed ${event.code} ${event.reason}`
        pending = -1
        onDone()
      }
    }
  }

  /** Where each stream stands now: the next connect resumes from there. */
  settle(): void {
    for (const followed of this.streams) followed.after = Math.max(followed.subscribed?.last_seq ?? 0, ...followed.seqs)
  }

  /** Whether the resume got exactly what was missed: `missed` events on the user's stream, in order, none on the room's. */
  exact(resumedFrom: number[], missed: number): boolean {
    if (this.closedEarly) return false
    return this.streams.every((followed, index) => {
      const from = resumedFrom[index]!
      const expected = index === 0 ? missed : 0
      const inOrder = followed.seqs.length === expected && followed.seqs.every((seq, at) => seq === from + at + 1)
      return inOrder && followed.subscribed?.recovered === true && followed.subscribed.last_seq === from + expected
    })
  }

  #followed(stream: string): Followed | undefined {
    return this.streams.find((followed) => followed.stream === stream)
  }
}

export {}

const plan = (await Bun.file(process.argv[2]!).json()) as Plan
const players = plan.players.map((player) => new Player(player))

/**
 * Where a player connects in a round: one of 64 loopback addresses of the round's own. The kernel
 * looks for a free port per destination, so 20,000 connections to one address spend more and more
 * of its time searching, and a killed instance's connections hold theirs in TIME_WAIT.
 */
const hostOf = (index: number, round: number) => `127.${round + 1}.${index % 64}.1`

function connectAll(round: number, stage: Stage, wave: number): Promise<void> {
  return new Promise((resolve) => {
    let pending = players.length
    let next = 0
    const connectNext = () => {
      const index = next++
      players[index]!.connect(hostOf(index, round), plan.port, stage, done)
    }
    const done = () => {
      if (--pending === 0) resolve()
      else if (next < players.length) connectNext()
    }
    // At most `wave` connecting at a time (everyone at once when `wave` is the count).
    while (next < Math.min(wave, players.length)) connectNext()
  })
}

const connecting = process.cpuUsage()
await connectAll(0, 'resume', 500)
const connected = process.cpuUsage(connecting)
const refused = players.filter((player) => player.closedEarly)
if (refused.length > 0) throw new Error(`${refused.length} players could not connect: ${refused[0]!.closedEarly}`)
for (const player of players) player.settle()
console.log(JSON.stringify({ ready: true, cpuSeconds: (connected.user + connected.system) / 1e6 }))

// Each `resume <round> <stage> <missed>`: every player back at once, as far as `stage`, having missed `missed` events of their user's stream; `exit` ends.
for await (const line of console) {
  const [command, round, stage, missed] = line.trim().split(' ') as [string, string, Stage, string]
  if (command === 'exit') break
  if (command !== 'resume') continue
  const resumedFrom = players.map((player) => player.streams.map((followed) => followed.after!))
  for (const player of players) player.closedEarly = undefined
  const cpuBefore = process.cpuUsage()
  await connectAll(Number(round), stage, players.length)
  const doneAt = performance.timeOrigin + performance.now()
  const { user, system } = process.cpuUsage(cpuBefore)
  const exact = players.filter((player, index) => player.exact(resumedFrom[index]!, Number(missed))).length
  const failure = players.find((player) => player.closedEarly)?.closedEarly
  if (stage === 'resume') for (const player of players) player.settle()
  console.log(JSON.stringify({ doneAt, exact, failure, cpuSeconds: (user + system) / 1e6 }))
}
for (const player of players) player.socket?.close()
process.exit(0)
