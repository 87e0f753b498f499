import { createLogger, type Logger, parseLogLevel } from '../observability/logger.ts'
import { type Options, UsageError, type Values } from './command.ts'

/** Logging and metrics flags, shared by serve, provider serve (and dev, for --log-level). */
export const observabilityOptions: Options = {
  'log-level': {
    type: 'string',
    description: 'trace, debug, info (default), warn, error, fatal or silent (ZG_LOG_LEVEL); JSON lines on stderr',
  },
  'metrics-public': {
    type: 'boolean',
    description: '/metrics answers any client, not only loopback ones (and, on the gateway, holders of the admin key)',
  },
}

/** The logger for --log-level / ZG_LOG_LEVEL: JSON lines on stderr, pretty ones on a terminal. */
export function loggerFrom(values: Values, component: string): Logger {
  try {
    const level = parseLogLevel((values['log-level'] as string | undefined) ?? process.env.ZG_LOG_LEVEL)
    return createLogger({ level, base: { component } })
  } catch (err) {
    throw new UsageError(`--log-level (ZG_LOG_LEVEL): ${(err as Error).message}`)
  }
}
