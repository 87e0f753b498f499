import type { Context, MiddlewareHandler } from 'hono'
import { observeRequests } from './http-requests.ts'
import type { Logger } from './logger.ts'
import { GatewayMetrics, type GatewayMetricsSources } from './metrics.ts'
import { logRequest, refusalReason } from './request-log.ts'

/**
 * The gateway's metrics and request log together: one observation per request (src/observability/request-log.ts),
 * read when the request is over for both; delivery checks and ledger commits reported as they happen.
 */
export class GatewayObservability {
  readonly metrics: GatewayMetrics
  /** Request lines and component messages; without one (an embedded gateway) nothing is logged per request. */
  readonly logger: Logger | undefined

  constructor(options: { logger?: Logger; sources?: GatewayMetricsSources } = {}) {
    this.metrics = new GatewayMetrics(options.sources)
    this.logger = options.logger
  }

  /** The middleware that follows each request; `defer` runs its bookkeeping where no client waits on it. */
  requests(defer: (job: () => void) => void): MiddlewareHandler {
    const { metrics, logger } = this
    return observeRequests({
      requestId: (c) => (c as Context<{ Variables: { requestId: string } }>).get('requestId'),
      started: () => metrics.started(),
      ended: () => metrics.ended(),
      defer,
      finish(c, o) {
        o.route = c.req.routePath
        o.keyId = (c as Context<{ Variables: { apiKey?: { id: string | null } } }>).get('apiKey')?.id ?? null
        const reason = o.status >= 400 ? refusalReason(o) : null
        metrics.observe(o, reason)
        if (logger?.isLevelEnabled('info')) logRequest(logger, o, reason)
      },
    })
  }

  /** A delivery's check is done: counted, and told at debug (at warn when the provider's signature disagreed). */
  verified(requestId: string, provider: string, status: string, level: string | null): void {
    this.metrics.verified(provider, status, level)
    if (!this.logger) return
    const fields = { requestId, provider, verification: { status, level } }
    if (status === 'disputed') this.logger.warn(fields, 'verification')
    else this.logger.debug(fields, 'verification')
  }

  ledgerCommitted(ms: number): void {
    this.metrics.ledgerCommitted(ms)
  }
}
