import './production'
import packageJson from '../package.json'
import { createApp } from './app'
import { type Config, ConfigError } from './config'
import { type AppContext, createContext } from './context'
import { openDatabase } from './db/database'
import { migrate } from './db/migrations'
import { traced } from './db/traced'
import { getOrCreateSetting } from './db/settings'
import type { Logger } from './lib/logger'
import { isoAfter } from './lib/clock'
import { randomToken } from './lib/crypto'
import { Tracer } from './lib/tracing'
import { seedDemoData } from './seed'

/** Opens and migrates the store, settles the secret, creates the admin and demo data, then builds the app. */
export async function prepare(config: Config, log: Logger) {
  const store = await openDatabase(config.databaseUrl, config.databasePoolSize)
  const applied = await migrate(store)
  if (applied.length > 0) log.info('database migrated', { dialect: store.dialect, versions: applied })
  const tracer = config.tracing && new Tracer({ ...config.tracing, serviceVersion: packageJson.version }, log)
  const db = tracer ? traced(store, tracer) : store

  let jwtSecret = config.jwt.secret
  if (jwtSecret === undefined) {
    const { value, created } = await getOrCreateSetting(db, 'jwt_secret', () => randomToken(48))
    jwtSecret = value
    log.warn(`JWT_SECRET is not set; using a ${created ? 'newly generated' : 'previously generated'} secret kept in the database`)
  }

  const context = createContext(config, db, log, jwtSecret, tracer)
  if (config.seedDemoData && (await seedDemoData(context))) log.info('demo data created (see README for the accounts)')
  if (config.admin) {
    const { username, password } = config.admin
    const admin = await context.users.bootstrapAdmin(username, password)
    if (admin === 'created') log.info('admin account created', { username })
    if (admin === 'not_an_active_admin')
      throw new ConfigError([
        `ADMIN_USERNAME: the account ${JSON.stringify(username)} exists but is not an active admin; choose another name, or make that account an active admin`,
      ])
  }

  const app = createApp(context)
  // Last: a start-up refused above leaves no listener behind.
  await context.bus.start()
  await context.presence.start()
  await context.relay?.start()
  return { context, app }
}

export async function startServer(config: Config, log: Logger) {
  const { context, app } = await prepare(config, log)
  app.listen({ port: config.port, hostname: config.host })
  const server = app.server
  if (!server) throw new Error('the server did not start')
  log.info('listening', { url: `http://${config.host}:${server.port}`, database: context.db.dialect, version: context.version })
  const purges = config.purgeInterval > 0 ? schedulePurges(context, log, config.purgeInterval) : undefined

  /**
   * Stops accepting connections, lets requests in flight finish (up to SHUTDOWN_TIMEOUT), then
   * closes the store. Resolves to the exit code: 0 when everything drained in time.
   */
  async function shutdown(reason: string): Promise<number> {
    log.info('shutting down', { reason, in_flight: server?.pendingRequests, sockets: context.realtime.sockets })
    context.realtime.drain()
    const deadline = Symbol('deadline')
    const drained = await Promise.race([server?.stop(), Bun.sleep(config.shutdownTimeout * 1000).then(() => deadline)])
    if (drained === deadline) {
      log.error('requests still running at the shutdown deadline; closing them', { in_flight: server?.pendingRequests })
      await server?.stop(true)
    }
    purges?.stop()
    await context.tracer?.shutdown()
    await context.presence.stop()
    await context.relay?.stop()
    await context.bus.stop()
    await context.db.close()
    log.info('stopped', { reason })
    return drained === deadline ? 1 : 0
  }

  return { context, app, shutdown }
}

/** Purges expired rows a minute after start (sooner with a shorter interval), then every `interval` seconds. */
function schedulePurges({ sessions, credentials, invites, rateLimits, events, chat, dms, users, avatars, config }: AppContext, log: Logger, interval: number) {
  const longestRateWindow = Math.max(...[...Object.values(config.userRateLimits), config.qrLogin.starts, config.qrLogin.decisions].map((limit) => limit.window))
  let stopped = false
  let timer: Timer
  const purge = async () => {
    try {
      const purged = {
        sessions: await sessions.purgeExpired(),
        loginCounters: await credentials.password.purgeStale(),
        qrLoginRequests: await credentials.qr.purgeExpired(),
        oauthStates: await credentials.oauth.purgeExpired(),
        rateCounters: await rateLimits.deleteStale(isoAfter(-longestRateWindow)),
        invitations: await invites.purgeSettled(),
        events: await events.purge(),
        messages: await chat.purge(),
        direct_messages: await dms.purge(),
        deleted_users: await users.purgeDeleted(config.userPurgeAfter),
        avatar_objects: await avatars.sweep(),
      }
      if (Object.values(purged).some((count) => count > 0)) log.info('expired rows purged', purged)
    } catch (error) {
      log.error('purging expired rows failed', { error: String(error) })
    }
    if (!stopped) timer = setTimeout(purge, interval * 1000).unref()
  }
  timer = setTimeout(purge, Math.min(interval, 60) * 1000).unref()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
