import type { ServerResponse } from 'node:http'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { Context, MiddlewareHandler } from 'hono'
import { RequestObservation } from './request-log.ts'

export type ObservationEnv = { Variables: { observation: RequestObservation } }

/** The request's observation, where the middleware below runs (absent for a handler called on its own). */
export function observationOf(c: Context): RequestObservation | undefined {
  return (c as Context<ObservationEnv>).get('observation')
}

export type ObserveRequestsOptions = {
  /** The request's id (set by an earlier middleware); a fresh observation is made per request. */
  requestId: (c: Context) => string
  started(): void
  /** The request is over: its last byte went out, or its client went away. Called at once (cheap work only). */
  ended(o: RequestObservation): void
  /** The rest (metrics, the log line): run `job` where it delays no client. Default: at once. */
  defer?: (job: () => void) => void
  /** Fields read once the route ran: the key's id, the status, the error code. */
  finish(c: Context, o: RequestObservation): void
}

/**
 * Follows each request from its arrival to its last byte. Under @hono/node-server a streamed answer is written
 * straight to the Node response after the handler returned, so the request is over when that response closes;
 * called through fetch(), it is over when the handler returns (a web stream's end is not followed).
 */
export function observeRequests(options: ObserveRequestsOptions): MiddlewareHandler {
  const defer = options.defer ?? ((job: () => void) => job())
  return async (c, next) => {
    const o = new RequestObservation(options.requestId(c), c.req.method)
    ;(c as Context<ObservationEnv>).set('observation', o)
    options.started()
    await next()
    // A whole answer leaves as the handler returns it; a stream's first byte was marked by its relay.
    if (!o.firstByteAt && c.res !== RESPONSE_ALREADY_SENT && c.res.status < 400) o.firstByteAt = performance.now()
    const error = c.error as { code?: unknown } | undefined
    o.errorCode = typeof error?.code === 'string' ? error.code : null
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing
    const done = () => {
      o.end = performance.now()
      // A client gone before the last byte: 499, as proxies log it, whatever status line it had seen.
      o.status = !outgoing ? c.res.status : outgoing.writableFinished ? outgoing.statusCode : 499
      options.ended(o)
      defer(() => options.finish(c, o))
    }
    if (outgoing && !outgoing.writableFinished && !outgoing.destroyed) outgoing.once('close', done)
    else done()
  }
}
