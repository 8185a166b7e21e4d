import './production'
import packageJson from '../package.json'
import { ConfigError, loadConfig } from './config'
import { createLogger } from './lib/logger'
import { startServer } from './server'

const args = new Set(process.argv.slice(2))

if (args.has('--version')) {
  console.log(packageJson.version)
  process.exit(0)
}

if (args.has('--healthcheck')) {
  // For the distroless image, which has no shell or curl: exit 0 when the local instance is healthy.
  const port = Bun.env.PORT || '3000'
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) })
    process.exit(response.ok ? 0 : 1)
  } catch {
    process.exit(1)
  }
}

try {
  const config = loadConfig()
  const { shutdown } = await startServer(config, createLogger(config.logLevel))
  let stopping = false
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.on(signal, async () => {
      if (stopping) return
      stopping = true
      process.exit(await shutdown(signal))
    })
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message)
    process.exit(2)
  }
  throw error
}
