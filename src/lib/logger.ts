import { writeSync } from 'node:fs'

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const

export type LogLevel = keyof typeof LEVELS
export type LogFields = Record<string, unknown>

export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
  /** Whether lines of this level are written at all (to skip building them). */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean
  /** Writes a line already composed as JSON (the hot request log); `body` is its fields after time and level. */
  raw(level: Exclude<LogLevel, 'silent'>, body: string): void
}

/** One JSON object per line on stdout, the format log collectors read without parsing rules. */
export function createLogger(level: LogLevel, write: (line: string) => void = writeStdout): Logger {
  const threshold = LEVELS[level]
  const enabled = (severity: Exclude<LogLevel, 'silent'>) => LEVELS[severity] >= threshold
  const emit = (severity: Exclude<LogLevel, 'silent'>) => (message: string, fields?: LogFields) => {
    if (!enabled(severity)) return
    write(`${JSON.stringify({ time: now(), level: severity, message, ...fields })}\n`)
  }
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    enabled,
    raw: (severity, body) => {
      if (enabled(severity)) write(`{"time":"${now()}","level":"${severity}",${body}}\n`)
    },
  }
}

let lastMillisecond = 0
let lastIso = ''

/** The ISO time, formatted once per millisecond however many lines share it. */
function now(): string {
  const millisecond = Date.now()
  if (millisecond !== lastMillisecond) {
    lastMillisecond = millisecond
    lastIso = new Date(millisecond).toISOString()
  }
  return lastIso
}

let pending = ''

const FLUSH_EVERY_MS = 20

/**
 * Lines leave in batches, every 20 ms, not one system call per request; whatever is pending when
 * the process exits is written before it goes.
 */
function writeStdout(line: string): void {
  if (pending === '') setTimeout(flushStdout, FLUSH_EVERY_MS)
  pending += line
}

function flushStdout(): void {
  if (pending === '') return
  const chunk = pending
  pending = ''
  writeSync(1, chunk)
}

process.on('exit', flushStdout)
