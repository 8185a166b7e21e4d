import { atMostEvery, Registry } from './lib/metrics'

/** Seconds; request latencies of this service sit between a tenth of a millisecond and a few hashes. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** Seconds from an event's writing to its sending: a millisecond on one instance, a few across them. */
const DELIVERY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

const LOCKOUT_KINDS = ['account', 'address', 'password_change'] as const
export type LockoutKind = (typeof LOCKOUT_KINDS)[number]

/** A Prometheus scrape interval: gauges counted in the store are read no more often than this. */
const STORE_GAUGE_PERIOD_MS = 15_000

/** What the gauges read at scrape time, from the services that know it. */
export interface GaugeSources {
  activeSessions(): Promise<number>
  usersByStatus(): Promise<{ active: number; inactive: number; deleted: number }>
  openRooms(): Promise<number>
  passwords: { readonly running: number; readonly waiting: number }
  realtime: { readonly sockets: number; readonly subscriptions: number }
}

export type Metrics = ReturnType<typeof createMetrics>

/** The kinds of work done in the background whose failures are counted (and logged). */
export const BACKGROUND_TASKS = ['event_log_read', 'presence', 'export', 'avatars', 'bus'] as const
export type BackgroundTask = (typeof BACKGROUND_TASKS)[number]

/**
 * Every metric of the service, defined here: the counters and histograms its parts record into,
 * and the gauges read at scrape time (`watch` wires those to their sources once they exist).
 */

export function createMetrics(labels: {
  /** Every type of lobby event, counted from zero. */
  eventTypes: readonly string[]
  /** Every reason a websocket closes for, counted from zero. */
  closeReasons: readonly string[]
}) {
  const registry = new Registry()
  const loginFailures = registry.counter('auth_login_failures_total', 'Logins refused for a wrong username or password.')
  const lockouts = registry.counter('auth_lockouts_total', 'Lock-outs started, by what was locked: account, address, or password_change.')
  const eventsWritten = registry.counter('events_written_total', 'Lobby events committed to the event log by this instance, by type.')
  const realtimeCloses = registry.counter(
    'realtime_closes_total',
    'Websockets closed, by reason (client: the client closed it; slowConsumer: it could not keep up).',
  )
  const deliveries = registry.counter('realtime_deliveries_total', 'Event frames handed to websockets live (replays not counted).').series({})
  const deliveryLatency = registry.histogram(
    'realtime_delivery_seconds',
    'From an event being written (just before its commit) to its frame going out to the sockets of this instance, live.',
    DELIVERY_BUCKETS,
  )
  const deliveryLatencySeries = deliveryLatency.series({})
  const backgroundErrors = registry.counter(
    'background_errors_total',
    'Failures of work no request waits for, by task: event_log_read (a stream could not be read after a notification; retried), presence (not recorded), export (cut off while sent), avatars (a stored object not removed).',
  )
  for (const task of BACKGROUND_TASKS) backgroundErrors.series({ task })
  // Present at 0 from start-up, so that increase() sees the first event after a restart.
  loginFailures.series({})
  for (const kind of LOCKOUT_KINDS) lockouts.series({ kind })
  for (const type of labels.eventTypes) eventsWritten.series({ type })
  for (const reason of labels.closeReasons) realtimeCloses.series({ reason })
  // Bun counts the requests its server is answering; the scrape hands it over, so it cannot drift.
  let requestsInFlight = 0
  registry.gauge('http_requests_in_flight', 'HTTP requests being answered, this scrape included.', () => [[{}, requestsInFlight]])
  registry.gauge('process_resident_memory_bytes', 'Resident set size.', () => [[{}, process.memoryUsage.rss()]])
  registry.gauge('process_heap_used_bytes', 'JavaScript heap in use.', () => [[{}, process.memoryUsage().heapUsed]])
  registry.gauge('process_uptime_seconds', 'Seconds since the process started.', () => [[{}, process.uptime()]])
  return {
    registry,
    observeRequestsInFlight(count: number) {
      requestsInFlight = count
    },
    eventWritten(type: string) {
      eventsWritten.inc({ type })
    },
    realtimeCloses,
    backgroundError(task: BackgroundTask) {
      backgroundErrors.inc({ task })
    },
    /** A live event went out to `receivers` sockets, `latency` seconds after it was written. */
    realtimeDelivered(receivers: number, latency: number) {
      deliveries.value += receivers
      deliveryLatency.record(deliveryLatencySeries, latency)
    },
    /** The gauges of the store and the password hasher. Those counted in the store are read at most every 15 s, however many scrapes come. */
    watch(sources: GaugeSources) {
      const activeSessions = atMostEvery(STORE_GAUGE_PERIOD_MS, sources.activeSessions)
      const usersByStatus = atMostEvery(STORE_GAUGE_PERIOD_MS, sources.usersByStatus)
      const openRooms = atMostEvery(STORE_GAUGE_PERIOD_MS, sources.openRooms)
      registry.gauge('sessions_active', 'Sessions neither revoked nor expired (read at most every 15 s).', async () => [[{}, await activeSessions()]])
      registry.gauge('users', 'User accounts, by status (read at most every 15 s).', async () => {
        const { active, inactive, deleted } = await usersByStatus()
        return [
          [{ status: 'active' }, active],
          [{ status: 'inactive' }, inactive],
          [{ status: 'deleted' }, deleted],
        ]
      })
      registry.gauge('rooms_open', 'Rooms not closed (read at most every 15 s).', async () => [[{}, await openRooms()]])
      registry.gauge('password_hashes_in_flight', 'argon2id hashes or verifications running now.', () => [[{}, sources.passwords.running]])
      registry.gauge('password_checks_waiting', 'Password hashes or verifications waiting for a free slot.', () => [[{}, sources.passwords.waiting]])
      registry.gauge('realtime_sockets', 'Websockets open on this instance, authenticated or not yet.', () => [[{}, sources.realtime.sockets]])
      registry.gauge('realtime_subscriptions', 'Streams followed by the websockets of this instance, all together.', () => [
        [{}, sources.realtime.subscriptions],
      ])
    },
    /** The relay's counters, and its gauges read from `status` (the relay refreshes it at every poll). */
    watchRelay(status: () => { role: string; broker: string; lag_events: number; lag_seconds: number }) {
      const published = registry.counter('relay_published_total', 'Events this instance published to the broker, each confirmed.').series({})
      const failures = registry.counter('relay_publish_failures_total', 'Attempts to publish a batch of events that the broker refused or could not take (retried with backoff).').series({})
      registry.gauge('relay_leader', '1 on the instance that relays the event log to the broker, 0 on the others.', () => [[{}, status().role === 'leader' ? 1 : 0]])
      registry.gauge('relay_broker_up', '0 while the last attempt to publish failed.', () => [[{}, status().broker === 'up' ? 1 : 0]])
      registry.gauge('relay_lag_events', 'Positions of the event log past the last one published to the broker.', () => [[{}, status().lag_events]])
      registry.gauge('relay_lag_seconds', 'Age of the oldest event not yet published to the broker (0 when none waits).', () => [[{}, status().lag_seconds]])
      return {
        published(count: number) {
          published.value += count
        },
        failed() {
          failures.value++
        },
      }
    },
    requests: registry.counter('http_requests_total', 'HTTP requests answered, by method, route template and status.'),
    requestDuration: registry.histogram(
      'http_request_duration_seconds',
      'Time to answer HTTP requests, by method, route template and status.',
      LATENCY_BUCKETS,
    ),
    loginFailures,
    lockouts,
  }
}
