import type { Context, MiddlewareHandler } from 'hono'
import { observeRequests } from './http-requests.ts'
import type { Logger } from './logger.ts'
import { ProviderNodeMetrics, type ProviderNodeMetricsSources } from './metrics.ts'
import { logRequest } from './request-log.ts'

/** Statuses of an admission's refusal: no valid session, no funded or acknowledged sub-account, no servable service. */
const ADMISSION_REFUSALS = new Set([401, 402, 403, 503])

/** The provider node's metrics and request log: one observation per proxied request, settlement runs as they end. */
export class ProviderNodeObservability {
  readonly metrics: ProviderNodeMetrics
  readonly logger: Logger | undefined

  constructor(options: { logger?: Logger; sources?: ProviderNodeMetricsSources } = {}) {
    this.metrics = new ProviderNodeMetrics(options.sources)
    this.logger = options.logger
  }

  /** The middleware that follows each proxied request. */
  requests(): MiddlewareHandler {
    const { metrics, logger } = this
    return observeRequests({
      // The gateway's id when it sent one (x-request-id), so a call's lines on both sides correlate.
      requestId: (c: Context) =>
        sane(c.req.header('x-request-id')) ?? `node_${crypto.randomUUID().replaceAll('-', '')}`,
      started: () => metrics.started(),
      ended: () => metrics.ended(),
      finish(c, o) {
        o.route = c.req.routePath
        const refusal = !o.admitted && ADMISSION_REFUSALS.has(o.status) ? o.errorCode : null
        metrics.observe(o, refusal)
        if (logger?.isLevelEnabled('info')) logRequest(logger, o, o.status >= 400 ? (refusal ?? 'error') : null, 'user')
      },
    })
  }

  /** The request passed admission: its worst case is held on the user's sub-account. */
  admitted(c: Context): void {
    this.metrics.admitted()
    const o = (c as Context<{ Variables: { observation?: { admitted: boolean } } }>).get('observation')
    if (o) o.admitted = true
  }

  /** A settlement run ended: its per-user outcomes, or the error it stopped on. */
  settled(outcomes: readonly { user: string; status: string; settled: bigint; records: number }[] | Error): void {
    this.metrics.settled(outcomes)
    if (!this.logger) return
    if (outcomes instanceof Error) this.logger.warn({ err: outcomes.message }, 'settlement failed')
    else if (outcomes.length)
      this.logger.info(
        {
          outcomes: outcomes.map((o) => ({
            user: o.user,
            status: o.status,
            settled: o.settled.toString(),
            records: o.records,
          })),
        },
        'settlement',
      )
  }
}

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

function sane(id: string | undefined): string | undefined {
  return id !== undefined && SANE_REQUEST_ID.test(id) ? id : undefined
}
