import { randomBytes } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'

export type RequestIdEnv = { Variables: { requestId: string } }

export const REQUEST_ID_HEADER = 'x-request-id'

// Ids end up in logs, headers and upstream requests: accept only tokens that cannot smuggle anything.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function newRequestId(): string {
  return `req_${randomBytes(12).toString('hex')}`
}

/**
 * Gives every request an id (`c.get('requestId')`) and puts it on every response as `x-request-id`, which OpenAI
 * SDKs surface as `_request_id` / `err.requestID`. A caller's own sane id is kept so logs correlate end to end.
 *
 * @example app.use('*', requestId())
 */
export function requestId(): MiddlewareHandler<RequestIdEnv> {
  return async (c, next) => {
    const incoming = c.req.header(REQUEST_ID_HEADER)
    const id = incoming !== undefined && SANE_REQUEST_ID.test(incoming) ? incoming : newRequestId()
    c.set('requestId', id)
    await next()
    // After next(): handlers and onError build their own responses, and this must land on all of them.
    c.header(REQUEST_ID_HEADER, id)
  }
}

/** The request's id, or a fresh one where the middleware did not run (a handler tested on its own). */
export function requestIdOf(c: Context): string {
  const id: unknown = c.get('requestId')
  return typeof id === 'string' ? id : newRequestId()
}
