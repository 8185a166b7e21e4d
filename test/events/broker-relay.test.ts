import { afterAll, describe, expect, test } from 'bun:test'
import { SQL } from 'bun'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { Connection } from 'rabbitmq-client'
import { BrokerMessageSchema } from '../../src/modules/broker/model'
import { ACCOUNTS_STREAM, roomStream } from '../../src/modules/events/model'
import { type Queryable } from '../../src/db/database'
import { brokerAvailable, consume, type Received, testExchange, TEST_AMQP_URL } from '../support/broker'
import { closeTestResources, freshDatabaseUrl, onlyOn, STORE, startTestServer, TEST_ENV } from '../support/harness'
import { lobby } from '../support/lobby'
import { freePort, type ServiceProcess, startService } from '../support/process'

// Domain events leave through RabbitMQ exactly as committed (SECURITY 36): the relay reads the
// event log in commit order and publishes what AMQP_EVENTS allows, each confirmed, recording how
// far it got. These tests run against the RabbitMQ on this machine, as another service would see it.

const running: ServiceProcess[] = []
afterAll(async () => {
  for (const service of running) service.child.kill('SIGKILL')
  await Promise.all(running.map((service) => service.child.exited))
  await closeTestResources()
})

const relayed = (exchange: string, env: Record<string, string> = {}) => ({ AMQP_URL: TEST_AMQP_URL, AMQP_EXCHANGE: exchange, AMQP_POLL_INTERVAL: '1', ...env })

/** What the log says the broker must get with the default AMQP_EVENTS (accounts.*, rooms.*): ids in commit order. */
async function committedForBroker(db: Queryable, epoch: string): Promise<Array<{ id: string; stream: string; seq: number }>> {
  const rows = await db.all<{ stream: string; seq: number }>(
    "SELECT stream, seq FROM events WHERE stream = 'accounts' OR stream LIKE 'room:%' ORDER BY position",
  )
  return rows.map(({ stream, seq }) => ({ id: `${epoch}:${stream}:${seq}`, stream, seq: Number(seq) }))
}

/** Each stream's numbers as the consumer met them, repeats dropped: must rise by one at each step. */
function streamsInOrder(messages: Received[]): boolean {
  const last = new Map<string, number>()
  for (const { body } of messages) {
    const before = last.get(body.stream) ?? body.seq - 1
    if (body.seq !== before + 1 && body.seq > before) return false
    last.set(body.stream, Math.max(before, body.seq))
  }
  return true
}

describe.if(brokerAvailable)(`domain events to RabbitMQ on ${STORE} (SECURITY 36)`, () => {
  test('every committed account and room event arrives, once and in its stream\'s order, as a persistent JSON message of the documented schema; chat and personal streams stay home', async () => {
    const exchange = testExchange()
    const consumer = await consume(exchange)
    try {
      const t = await startTestServer(relayed(exchange))
      const rooms = lobby(t.client)
      const owner = await t.client.register('mq_owner')
      const guest = await t.client.register('mq_guest')
      const admin = await t.client.loginAdmin()
      const room = await rooms.createRoom(owner, { max_players: 2 })
      await rooms.seat(owner, room.room_id, guest)
      expect((await t.client.post(`/rooms/${room.room_id}/messages`, { body: 'not for the broker' }, guest.access)).status).toBe(201)
      await t.client.delete(`/rooms/${room.room_id}/members/me`, guest.access)
      await t.client.post(`/rooms/${room.room_id}/close`, undefined, owner.access)
      expect((await t.client.put(`/users/${guest.userId}`, { display_name: 'Guest' }, admin.access)).status).toBe(200)
      expect((await t.client.delete(`/users/${guest.userId}`, admin.access)).status).toBe(200)
      expect((await t.client.post(`/users/${guest.userId}/restore`, undefined, admin.access)).status).toBe(200)

      const epoch = await t.context.events.epoch()
      const expected = await committedForBroker(t.context.db, epoch)
      await consumer.until(() => consumer.distinct().length >= expected.length)
      await Bun.sleep(300)
      const messages = consumer.distinct()
      expect(messages.map((message) => message.messageId).sort()).toEqual(expected.map((event) => event.id).sort())
      expect(consumer.received.length).toBe(messages.length)
      expect(streamsInOrder(consumer.received)).toBe(true)
      expect(new Set(messages.map((message) => message.routingKey))).toEqual(
        new Set([
          'accounts.account_created',
          'accounts.account_changed',
          'accounts.account_deleted',
          'accounts.account_restored',
          'rooms.room_created',
          'rooms.member_joined',
          'rooms.room_ready',
          'rooms.member_left',
          'rooms.room_not_ready',
          'rooms.room_closed',
        ]),
      )
      for (const message of messages) {
        expect(Value.Check(BrokerMessageSchema, message.body)).toBe(true)
        expect(message.body.id).toBe(message.messageId)
        expect(message.routingKey).toBe(`${message.body.stream === ACCOUNTS_STREAM ? 'accounts' : 'rooms'}.${message.body.event.type}`)
        expect(message).toMatchObject({ persistent: true, contentType: 'application/json' })
      }
      expect(messages.find((message) => message.routingKey === 'rooms.room_created')?.body.event).toEqual({
        type: 'room_created',
        room_id: room.room_id,
        owner_id: owner.userId,
        game_role: 'host',
        max_players: 2,
      })
      expect(messages.filter((message) => message.routingKey === 'accounts.account_created').map((message) => message.body.event)).toContainEqual({
        type: 'account_created',
        user_id: guest.userId,
      })

      const ready = await t.client.get('/ready')
      expect(ready.body.relay).toMatchObject({ role: 'leader', broker: 'up', lag_events: 0, lag_seconds: 0 })
      const metrics = (await t.client.get('/metrics')).body as string
      expect(metrics).toContain('relay_leader 1')
      expect(metrics).toMatch(new RegExp(`relay_published_total ${messages.length}\\b`))
    } finally {
      await consumer.close()
    }
  }, 60_000)

  test('nothing of a rolled-back transaction ever leaves, and a transaction that commits after a later one is not passed over', async () => {
    const exchange = testExchange()
    const consumer = await consume(exchange)
    try {
      const t = await startTestServer(relayed(exchange))
      const { db, events } = t.context
      const [ghost, late, early] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()]
      await expect(
        db.transaction(async (tx) => {
          await events.emit(tx, [ACCOUNTS_STREAM, { type: 'account_created', user_id: ghost }])
          throw new Error('changed its mind')
        }),
      ).rejects.toThrow('changed its mind')
      // `late` takes its place in the log, then waits before it commits; `early` takes the next place and commits first.
      let placed!: () => void
      const latePlaced = new Promise<void>((resolve) => (placed = resolve))
      const lateCommit = db.transaction(async (tx) => {
        await events.emit(tx, [roomStream(late), { type: 'room_closed', room_id: late }])
        tx.beforeCommit(async () => {
          placed()
          await Bun.sleep(600)
        })
      })
      await latePlaced
      const earlyCommit = db.transaction(async (tx) => {
        await events.emit(tx, [ACCOUNTS_STREAM, { type: 'account_created', user_id: early }])
      })
      await Promise.all([lateCommit, earlyCommit])

      const about = (id: string) => (message: Received) => JSON.stringify(message.body.event).includes(id)
      await consumer.until(() => consumer.received.some(about(late)) && consumer.received.some(about(early)))
      await Bun.sleep(300)
      expect(consumer.received.some(about(ghost))).toBe(false)
      expect(consumer.received.filter(about(late))).toHaveLength(1)
    } finally {
      await consumer.close()
    }
  }, 30_000)

  test.if(onlyOn('postgres', "the relay's advisory lock (PostgreSQL's)"))("the relay's lock is a key of its own: a lock held on the hash of its name (as the transactions' locks are taken, on keys a username can collide with) does not hold it up", async () => {
    const databaseUrl = await freshDatabaseUrl()
    const other = new SQL(databaseUrl, { max: 1 })
    try {
      await other.unsafe("SELECT pg_advisory_lock(hashtext('event-relay'))")
      const nowhere = `amqp://guest:guest@127.0.0.1:${await freePort()}`
      const t = await startTestServer({ DATABASE_URL: databaseUrl, AMQP_URL: nowhere, AMQP_POLL_INTERVAL: '1' })
      expect((await t.client.get('/ready')).body.relay.role).toBe('leader')
    } finally {
      await other.close()
    }
  }, 30_000)

  test('while the broker cannot be reached the service goes on, /ready and /metrics show the lag, and the log keeps every unpublished event past EVENT_RETENTION', async () => {
    const nowhere = `amqp://guest:guest@127.0.0.1:${await freePort()}`
    const t = await startTestServer({ AMQP_URL: nowhere, AMQP_POLL_INTERVAL: '1' })
    const owner = await t.client.register('mq_unreached')
    await lobby(t.client).createRoom(owner)
    const deadline = Date.now() + 15_000
    let ready = await t.client.get('/ready')
    while (ready.body.relay?.broker !== 'down' || ready.body.relay.lag_events < 2) {
      if (Date.now() > deadline) throw new Error(`the relay never said the broker is down: ${JSON.stringify(ready.body)}`)
      await Bun.sleep(200)
      ready = await t.client.get('/ready')
    }
    expect(ready.status).toBe(200)
    expect(ready.body.relay).toMatchObject({ role: 'leader', position: 0 })
    const metrics = (await t.client.get('/metrics')).body as string
    expect(metrics).toMatch(/relay_publish_failures_total [1-9]/)
    expect(metrics).toContain('relay_broker_up 0')

    const stored = async () => Number((await t.context.db.get<{ count: number }>('SELECT COUNT(*) AS count FROM events'))!.count)
    const before = await stored()
    const pastRetention = Date.now() + (t.config.eventRetention + 60) * 1000
    expect(await t.context.events.purge(pastRetention)).toBe(0)
    expect(await stored()).toBe(before)

    // Without a relay, the same events go.
    const plain = await startTestServer()
    await plain.client.register('mq_not_relayed')
    expect(await plain.context.events.purge(pastRetention)).toBeGreaterThan(0)
  }, 30_000)

  test('the broker stopped and started again (rabbitmqctl stop_app / start_app): events written meanwhile arrive once it is back, none lost', async () => {
    const exchange = testExchange()
    const consumer = await consume(exchange)
    const t = await startTestServer(relayed(exchange))
    try {
      const owner = await t.client.register('mq_restart')
      await lobby(t.client).createRoom(owner)
      const epoch = await t.context.events.epoch()
      await consumer.until(() => consumer.distinct().length >= 2)

      expect(Bun.spawnSync(['rabbitmqctl', 'stop_app'], { stdout: 'ignore', stderr: 'pipe' }).exitCode).toBe(0)
      try {
        for (let i = 0; i < 5; i++) expect((await t.client.post('/rooms', { room_name: `While down ${i}` }, owner.access)).status).toBe(201)
        const deadline = Date.now() + 20_000
        while ((await t.client.get('/ready')).body.relay?.broker !== 'down') {
          if (Date.now() > deadline) throw new Error('the relay never noticed the broker had gone')
          await Bun.sleep(200)
        }
      } finally {
        expect(Bun.spawnSync(['rabbitmqctl', 'start_app'], { stdout: 'ignore', stderr: 'pipe' }).exitCode).toBe(0)
      }
      const expected = await committedForBroker(t.context.db, epoch)
      await consumer.until(() => consumer.distinct().length >= expected.length, 60_000)
      expect(consumer.distinct().map((message) => message.messageId).sort()).toEqual(expected.map((event) => event.id).sort())
      expect(streamsInOrder(consumer.received)).toBe(true)
      // The consumer can hear the last message before the relay has its confirm and records the position.
      const settled = Date.now() + 15_000
      let relay = (await t.client.get('/ready')).body.relay
      while ((relay.broker !== 'up' || relay.lag_events !== 0) && Date.now() < settled) {
        await Bun.sleep(200)
        relay = (await t.client.get('/ready')).body.relay
      }
      expect(relay).toMatchObject({ broker: 'up', lag_events: 0 })
    } finally {
      await consumer.close()
    }
  }, 120_000)

  test('kill -9 of the instance that relays, while events flow: another instance (on SQLite, the same one restarted) takes over, and a consumer that drops repeats by messageId ends with exactly the log\'s events', async () => {
    const exchange = testExchange()
    const consumer = await consume(exchange)
    try {
      const databaseUrl = STORE === 'postgres' ? await freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'sgw-relay-')), 'gateway.sqlite')}`
      const env = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: databaseUrl, ...relayed(exchange) }
      const start = async (port?: number) => {
        const service = await startService(env, port)
        running.push(service)
        return service
      }
      const instances = STORE === 'postgres' ? [await start(), await start()] : [await start()]
      const leaderOf = async (among: ServiceProcess[]) => {
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(100))
          for (const service of among) if ((await service.client.get('/ready')).body.relay?.role === 'leader') return service
        throw new Error('no instance took the relay')
      }
      const leader = await leaderOf(instances)
      const owner = await instances[0]!.client.register('mq_writer')

      // Rooms opened on every instance, one after another, while the leader is killed in the middle.
      let writing = true
      let opened = 0
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          const alive = instances.filter((service) => service.child.exitCode === null && service.child.signalCode === null)
          const target = alive[i % Math.max(1, alive.length)]
          if (!target) {
            await Bun.sleep(20)
            continue
          }
          const reply = await target.client.post('/rooms', { room_name: `Flow ${i}` }, owner.access).catch(() => undefined)
          if (reply?.status === 201) opened++
        }
      })()
      await consumer.until(() => consumer.received.length >= 20)
      leader.child.kill('SIGKILL')
      await leader.child.exited
      const killedAt = opened
      if (STORE === 'sqlite') {
        const port = Number(new URL(leader.baseUrl).port)
        instances.splice(0, 1, await start(port))
      }
      await leaderOf(instances.filter((service) => service !== leader))
      while (opened < killedAt + 20) await Bun.sleep(20)
      writing = false
      await writer

      const sql = STORE === 'postgres' ? new SQL(databaseUrl, { max: 1 }) : undefined
      const epoch = await epochOf(databaseUrl, sql)
      const expected = await committedForBroker(
        { all: (query: string) => (sql ? sql.unsafe(query) : sqliteAll(databaseUrl, query)) } as Queryable,
        epoch,
      )
      await sql?.close()
      await consumer.until(() => consumer.distinct().length >= expected.length, 30_000)
      await Bun.sleep(300)
      const distinct = consumer.distinct()
      expect(distinct.map((message) => message.messageId).sort()).toEqual(expected.map((event) => event.id).sort())
      expect(streamsInOrder(consumer.received)).toBe(true)
      console.log(
        `relay kill -9 on ${STORE}: ${distinct.length} events, ${consumer.received.length - distinct.length} delivered twice (dropped by messageId), ${opened} rooms opened`,
      )
    } finally {
      await consumer.close()
    }
  }, 90_000)
})

describe.if(brokerAvailable)(`the example consumer (README: Domain events to RabbitMQ) on ${STORE}`, () => {
  test('run as another service would, it prints each event of the log once, a message delivered again dropped; the README shows it as it is', async () => {
    const source = await Bun.file('examples/consume-events.ts').text()
    expect(await Bun.file('README.md').text()).toContain(`\`\`\`ts\n${source}\`\`\``)
    const exchange = testExchange()
    const queue = `${exchange}.example`
    const example = Bun.spawn([process.execPath, 'examples/consume-events.ts'], {
      env: { PATH: Bun.env.PATH ?? '', AMQP_URL: TEST_AMQP_URL, AMQP_EXCHANGE: exchange, QUEUE: queue },
      stdout: 'pipe',
      stderr: 'inherit',
    })
    let printed = ''
    void (async () => {
      for await (const chunk of example.stdout.pipeThrough(new TextDecoderStream())) printed += chunk
    })()
    const lines = () => printed.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { routing_key: string; id: string })
    const broker = new Connection({ url: TEST_AMQP_URL })
    broker.on('error', () => {})
    try {
      // Its queue exists (and is bound) before anything is published.
      for (const deadline = Date.now() + 10_000; ; await Bun.sleep(50)) {
        const channel = await broker.acquire()
        const found = await channel.queueDeclare({ queue, passive: true }).then(() => true, () => false)
        await channel.close().catch(() => {})
        if (found) break
        if (Date.now() > deadline) throw new Error('the example never declared its queue')
      }
      const t = await startTestServer(relayed(exchange))
      const owner = await t.client.register('mq_example')
      const room = await lobby(t.client).createRoom(owner)
      await t.client.post(`/rooms/${room.room_id}/close`, undefined, owner.access)
      const expected = await committedForBroker(t.context.db, await t.context.events.epoch())
      for (const deadline = Date.now() + 20_000; lines().length < expected.length; await Bun.sleep(20))
        if (Date.now() > deadline) throw new Error(`the example printed ${lines().length} of ${expected.length}`)

      // A message again, as after a crash of the relaying instance between its confirm and its record.
      const again = expected.find((event) => event.stream === roomStream(room.room_id))!
      const [stored] = await t.context.events.read(again.stream, again.seq - 1, 1)
      const publisher = broker.createPublisher({ confirm: true })
      const body = { schema_version: 1, id: again.id, stream: again.stream, seq: again.seq, position: stored!.position, occurred_at: stored!.created_at, event: stored!.event }
      await publisher.send({ exchange, routingKey: `rooms.${stored!.event.type}`, messageId: again.id, durable: true, contentType: 'application/json' }, body)
      await publisher.close()
      await t.client.post('/rooms', { room_name: 'After the repeat' }, owner.access)
      const after = await committedForBroker(t.context.db, await t.context.events.epoch())
      for (const deadline = Date.now() + 20_000; lines().length < after.length; await Bun.sleep(20))
        if (Date.now() > deadline) throw new Error(`the example printed ${lines().length} of ${after.length}`)
      await Bun.sleep(200)
      expect(lines().map((line) => line.id).sort()).toEqual(after.map((event) => event.id).sort())
      const byStream = Map.groupBy(lines(), (line) => line.id.slice(0, line.id.lastIndexOf(':')))
      for (const printedOfStream of byStream.values()) {
        const seqs = printedOfStream.map((line) => Number(line.id.slice(line.id.lastIndexOf(':') + 1)))
        expect(seqs).toEqual(seqs.toSorted((a, b) => a - b))
      }
    } finally {
      example.kill('SIGTERM')
      await example.exited
      const channel = await broker.acquire()
      await channel.queueDelete({ queue })
      await channel.exchangeDelete({ exchange })
      await channel.close()
      await broker.close()
    }
  }, 60_000)
})

async function epochOf(databaseUrl: string, sql?: SQL): Promise<string> {
  const query = "SELECT value FROM settings WHERE key = 'event_epoch'"
  const rows = sql ? await sql.unsafe(query) : await sqliteAll(databaseUrl, query)
  return rows[0].value
}

async function sqliteAll(databaseUrl: string, query: string): Promise<any[]> {
  const { Database } = await import('bun:sqlite')
  const db = new Database(databaseUrl.replace(/^sqlite:/, ''), { readonly: true })
  try {
    return db.query(query).all()
  } finally {
    db.close()
  }
}
