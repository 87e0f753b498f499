import { createRequire } from 'node:module'
import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

/** pino's levels, quietest last; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** A level named by `--log-level` or ZG_LOG_LEVEL (default info); throws on a name pino does not know. */
export function parseLogLevel(text: string | undefined): LogLevel {
  if (text === undefined || text === '') return 'info'
  const level = text.toLowerCase() as LogLevel
  if (!LOG_LEVELS.includes(level)) throw new Error(`the log level is one of ${LOG_LEVELS.join(', ')}, not ${text}`)
  return level
}

/**
 * Paths pino blanks out should a secret ever reach a log object. Belt and braces: request lines are built field by
 * field (src/observability/request-log.ts) and never carry headers, keys or tokens in the first place.
 */
const REDACT = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'headers.cookie',
  'req.headers.cookie',
  'apiKey',
  'adminKey',
  'privateKey',
  'key',
  'token',
  'sessionToken',
]

export type LoggerOptions = {
  level?: LogLevel
  /** Where lines go (tests capture them here); default stderr. */
  destination?: DestinationStream
  /** Human-readable lines (pino-pretty); default: when stderr is a TTY and no destination is given. */
  pretty?: boolean
  /** Fields on every line (component, provider). */
  base?: Record<string, unknown>
}

/** One JSON line per event on stderr, or pretty lines on a terminal; the level as configured. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? (!options.destination && process.stderr.isTTY === true)
  const destination = options.destination ?? (pretty ? prettyStream() : pino.destination({ dest: 2, sync: false }))
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? null,
      redact: { paths: REDACT, censor: '[redacted]' },
      // ISO time reads in any log tool; pino's default is epoch ms.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

/** pino-pretty, loaded only for a terminal: a JSON pipeline never pays for it. */
function prettyStream(): DestinationStream {
  const require = createRequire(import.meta.url)
  const pretty = require('pino-pretty') as (options: Record<string, unknown>) => DestinationStream
  return pretty({ destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
}

/** Messages that tell of something going wrong, among the components' plain-text lines. */
const TROUBLE = /\b(fail(s|ed|ure)?|error|cannot|could not|not written|unreachable|refus\w*|revert\w*|invalid)\b/i

/**
 * The `log(line)` callbacks the gateway's and the provider node's components take, routed to the logger: a line
 * telling of a failure at warn, any other at info. Their words stay as they are; the level is what a filter needs.
 */
export function lineLogger(logger: Logger): (line: string) => void {
  return (line) => {
    if (TROUBLE.test(line)) logger.warn(line)
    else logger.info(line)
  }
}
