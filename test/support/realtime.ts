// What tests of /realtime share: a raw websocket client that keeps every frame.

/** A websocket client that keeps every frame and tells how it closed. */
export async function connect(baseUrl: string) {
  const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/realtime`)
  const frames: any[] = []
  const waiters: Array<() => void> = []
  let closed: { code: number; reason: string } | undefined
  socket.onmessage = (message) => {
    frames.push(JSON.parse(String(message.data)))
    waiters.splice(0).forEach((wake) => wake())
  }
  socket.onclose = (event) => {
    closed = { code: event.code, reason: event.reason }
    waiters.splice(0).forEach((wake) => wake())
  }
  await new Promise((resolve) => (socket.onopen = resolve))
  const until = async <T>(check: () => T | undefined, ms = 3000): Promise<T> => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = check()
      if (found !== undefined && found !== false) return found
      if (Date.now() > deadline)
        throw new Error(`timed out; ${frames.length} frames, the last: ${JSON.stringify(frames.slice(-3)).slice(0, 600)}; closed: ${JSON.stringify(closed)}`)
      await new Promise<void>((wake) => {
        waiters.push(wake)
        setTimeout(wake, 50)
      })
    }
  }
  return {
    frames,
    send: (frame: object) => socket.send(JSON.stringify(frame)),
    sendRaw: (text: string) => socket.send(text),
    until,
    closed: () => until(() => closed),
    events: (stream: string) => frames.filter((frame) => frame.op === 'event' && frame.stream === stream),
    close: () => socket.close(),
  }
}

export type RealtimeTestClient = Awaited<ReturnType<typeof connect>>

/** A socket authenticated with `token`, past its `ready` frame, and following its user's stream. */
export async function follower(baseUrl: string, token: string) {
  const socket = await connect(baseUrl)
  socket.send({ op: 'auth', token })
  const ready = await socket.until(() => socket.frames.find((frame) => frame.op === 'ready'))
  await subscribe(socket, 'user')
  return Object.assign(socket, {
    userStream: `user:${ready.user_id}` as string,
    types: (stream: string) => socket.events(stream).map((frame) => frame.event.type),
  })
}

/** Subscribes and waits for the answer: the `subscribed` frame, or an `error` one. */
export async function subscribe(socket: RealtimeTestClient, stream: string, after?: number) {
  const seen = socket.frames.length
  socket.send({ op: 'subscribe', stream, after })
  return socket.until(() =>
    socket.frames.slice(seen).find((frame) => frame.op === 'error' || (frame.op === 'subscribed' && (frame.stream === stream || stream === 'user'))),
  )
}
