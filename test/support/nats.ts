import { freePort } from './process'

/** The NATS that runs on the developers' and CI's machines (shared/ENGINEERING.md). .ci/run starts it when it is down. */
export const TEST_NATS_URL = Bun.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const NATS_SERVER = Bun.which('nats-server') ?? '/usr/sbin/nats-server'

async function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  try {
    const socket = await Bun.connect({
      hostname,
      port: Number(port || 4222),
      socket: { data() {} },
    })
    socket.end()
    return true
  } catch {
    return false
  }
}

export const natsAvailable = await reachable(TEST_NATS_URL)
if (!natsAvailable && Bun.env.REQUIRE_NATS) throw new Error(`REQUIRE_NATS is set but no NATS answers at ${TEST_NATS_URL}`)
if (!natsAvailable) console.warn(`skipping the NATS bus tests: no NATS at ${TEST_NATS_URL} (nats-server -a 127.0.0.1 &)`)

/** The settings of instances woken through NATS, on subjects of their own so that tests never hear each other. */
export const natsBus = (url = TEST_NATS_URL) => ({
  REALTIME_BUS: 'nats',
  NATS_URL: url,
  NATS_SUBJECT_PREFIX: `test_${crypto.randomUUID().slice(0, 8)}`,
})

/** A NATS server of a test's own, which it may stop and start again on the same port. */
export async function privateNats() {
  const port = await freePort()
  const monitor = await freePort()
  let child: ReturnType<typeof Bun.spawn> | undefined
  const server = {
    url: `nats://127.0.0.1:${port}`,
    async start() {
      child = Bun.spawn([NATS_SERVER, '-a', '127.0.0.1', '-p', String(port), '-m', String(monitor)], { stdout: 'ignore', stderr: 'ignore' })
      for (let tries = 0; tries < 100 && !(await reachable(server.url)); tries++) await Bun.sleep(50)
    },
    async stop() {
      child?.kill('SIGKILL')
      await child?.exited
    },
    /** The subjects each client connection (by name) subscribes to now, from the server's monitoring port. */
    async subscriptions(): Promise<string[][]> {
      const answer = (await (await fetch(`http://127.0.0.1:${monitor}/connz?subs=1`)).json()) as { connections: Array<{ subscriptions_list?: string[] }> }
      return answer.connections.map((connection) => connection.subscriptions_list ?? [])
    },
  }
  await server.start()
  return server
}
