import { randomUUID } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import { requestHeader } from '../../http/node-request.ts'
import { step } from '../steps.ts'

export type RequestIdEnv = { Variables: { requestId: string; requestIdOnResponse?: boolean } }

export const REQUEST_ID_HEADER = 'x-request-id'

// Ids end up in logs, headers and upstream requests: accept only tokens that cannot smuggle anything.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function newRequestId(): string {
  // randomUUID draws from a pooled entropy buffer; randomBytes(12) is a syscall-priced call per request.
  return `req_${randomUUID().replaceAll('-', '')}`
}

/**
 * Gives every request an id (`c.get('requestId')`) and puts it on every response as `x-request-id`, which OpenAI
 * SDKs surface as `_request_id` / `err.requestID`. A caller's own sane id is kept so logs correlate end to end.
 *
 * @example app.use('*', requestId())
 */
export function requestId(): MiddlewareHandler<RequestIdEnv> {
  return async (c, next) => {
    step('app')
    const incoming = requestHeader(c, REQUEST_ID_HEADER)
    const id = incoming !== undefined && SANE_REQUEST_ID.test(incoming) ? incoming : newRequestId()
    c.set('requestId', id)
    await next()
    if (c.get('requestIdOnResponse')) return
    // Set afterwards, where missing, rather than prepared on the context before next(): a prepared header is a
    // Headers object per request, of use only to responses built through the context (c.json: health, listings),
    // while the forwarded calls, the ones that count, build their own with the id. Setting a header on a finished
    // response copies it, which those others pay instead. A handler that wrote its response straight to the Node
    // response (RESPONSE_ALREADY_SENT) must say so with requestIdOnResponse(): the marker must not be copied.
    if (c.res.headers.get(REQUEST_ID_HEADER) !== id) c.header(REQUEST_ID_HEADER, id)
  }
}

/**
 * Tells requestId() that the handler's Response carries the id already (it was built with `c.get('requestId')`), so
 * that it is not checked: reading a Response's headers builds a Headers object for them, and under
 * @hono/node-server it also takes the response off its fast path (some 40 µs per forwarded call).
 */
export function requestIdOnResponse(c: Context): void {
  const context = c as Context<RequestIdEnv>
  context.set('requestIdOnResponse', true)
}

/** The request's id, or a fresh one where the middleware did not run (a handler tested on its own). */
export function requestIdOf(c: Context): string {
  const id: unknown = c.get('requestId')
  return typeof id === 'string' ? id : newRequestId()
}
