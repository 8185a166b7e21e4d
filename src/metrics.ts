import { Registry } from './lib/metrics'

/** Seconds; request latencies of this service sit between a tenth of a millisecond and a few hashes. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

const LOCKOUT_KINDS = ['account', 'address', 'password_change'] as const
export type LockoutKind = (typeof LOCKOUT_KINDS)[number]

export type Metrics = ReturnType<typeof createMetrics>

/** The metrics the service records as it runs; gauges read at scrape time are added where they are wired. */
export function createMetrics() {
  const registry = new Registry()
  const loginFailures = registry.counter('auth_login_failures_total', 'Logins refused for a wrong username or password.')
  const lockouts = registry.counter('auth_lockouts_total', 'Lock-outs started, by what was locked: account, address, or password_change.')
  // Present at 0 from start-up, so that increase() sees the first event after a restart.
  loginFailures.series({})
  for (const kind of LOCKOUT_KINDS) lockouts.series({ kind })
  return {
    registry,
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
