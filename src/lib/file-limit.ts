import { readFileSync } from 'node:fs'

/** Files kept free for everything that is not a socket (the database, logs, avatars, NATS): a tenth, at most 1,000. */
const spareFiles = (limit: number) => Math.min(1000, Math.ceil(limit / 10))

/** The soft limit of open files of this process (`ulimit -n`), where the system says it (Linux); undefined elsewhere. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((row) => row.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft)
  } catch {
    return undefined
  }
}

/**
 * The sockets an instance may hold: `wanted`, or fewer when the file limit would run out first. Past
 * that limit the kernel still completes connections that the server can no longer accept, and
 * clients wait on them with no answer; under it, a connection past the cap is told 1013 and tries
 * another instance.
 */
export function socketsWithinFileLimit(wanted: number, limit: number | undefined): number {
  return limit === undefined ? wanted : Math.max(1, Math.min(wanted, limit - spareFiles(limit)))
}
