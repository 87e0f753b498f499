import type { ErrorHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { errorTypeFor } from '../../http/error-type.ts'
import { requestIdOf } from './request-id.ts'

export type GatewayErrorOptions = {
  type?: string
  code?: string | null
  param?: string | null
  headers?: Record<string, string>
  /** The gateway already retried or failed over: tell OpenAI SDKs not to retry on their own (`x-should-retry`). */
  noRetry?: boolean
  cause?: unknown
}

/**
 * An error the gateway answers with, in OpenAI's shape. OpenAI SDKs read only `body.error`, and all four keys are
 * required by the spec's `ErrorResponse` schema (openai-clients.md §0.2), so `toJSON()` always emits them.
 */
export class GatewayError extends Error {
  override name = 'GatewayError'
  readonly status: number
  readonly type: string
  readonly code: string | null
  readonly param: string | null
  readonly headers: Record<string, string>
  readonly noRetry: boolean

  constructor(status: number, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.status = status
    this.type = options.type ?? errorTypeFor(status)
    this.code = options.code ?? null
    this.param = options.param ?? null
    this.headers = options.headers ?? {}
    this.noRetry = options.noRetry ?? false
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export function badRequest(message: string, param?: string | null, code?: string | null): GatewayError {
  return new GatewayError(400, message, { param: param ?? null, code: code ?? null })
}

export function notFound(message: string, code?: string | null): GatewayError {
  return new GatewayError(404, message, { code: code ?? null })
}

export function unauthorized(message: string): GatewayError {
  return new GatewayError(401, message, { code: 'invalid_api_key' })
}

export function modelNotFound(model: string): GatewayError {
  return new GatewayError(404, `The model \`${model}\` does not exist or no provider on the network serves it.`, {
    param: 'model',
    code: 'model_not_found',
  })
}

export function payloadTooLarge(limit: number): GatewayError {
  return new GatewayError(413, `The request body is larger than the limit of ${limit} bytes.`, {
    code: 'request_too_large',
  })
}

/**
 * An upstream (provider) failure, re-shaped. A status outside 400..599 (a provider answering 200 with garbage, or
 * a 3xx) becomes 502, since the client must see an error, not a success.
 */
export function upstreamError(
  status: number,
  message: string,
  code?: string | null,
  options: Omit<GatewayErrorOptions, 'code'> = {},
): GatewayError {
  const clientStatus = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 502
  return new GatewayError(clientStatus, message, { ...options, code: code === undefined ? 'upstream_error' : code })
}

/** Longest Retry-After we send: openai-node 7 and openai-python ignore larger values, LangChain won't wait. */
const MAX_RETRY_AFTER_SECONDS = 60

/**
 * Renders any thrown value as an OpenAI error response. Unknown errors become a 500 whose message carries only the
 * request id: their text may hold stack frames, URLs with credentials, or upstream internals.
 */
export function errorResponse(err: unknown, requestId: string): Response {
  const error = asGatewayError(err, requestId)
  const headers = new Headers()
  for (const [name, value] of Object.entries(error.headers)) headers.set(name, value)
  headers.set('content-type', 'application/json')
  headers.set('x-request-id', requestId)
  if (error.status >= 500 && error.noRetry) headers.set('x-should-retry', 'false')
  if (error.status === 429) {
    // LangChain does not retry a 429 without Retry-After (openai-clients.md §0.6); one normalised header, no `-ms`
    // twin that clients would prefer over it.
    headers.set('retry-after', String(retryAfterSeconds(headers.get('retry-after-ms'), headers.get('retry-after'))))
    headers.delete('retry-after-ms')
  }
  return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers })
}

/**
 * `app.onError` for the gateway: OpenAI-shaped errors always. Only errors the gateway did not expect are logged
 * (with their stack, which the client never sees); GatewayErrors are answers, not faults.
 *
 * @example app.onError(errorHandler((line) => console.error(line)))
 */
export function errorHandler(log: (line: string) => void): ErrorHandler {
  return (err, c) => {
    const requestId = requestIdOf(c)
    if (!(err instanceof GatewayError) && !(err instanceof HTTPException && err.status < 500)) {
      log(`${requestId} ${c.req.method} ${c.req.path} failed: ${err.stack ?? err}`)
    }
    return errorResponse(err, requestId)
  }
}

function asGatewayError(err: unknown, requestId: string): GatewayError {
  if (err instanceof GatewayError) return err
  if (err instanceof HTTPException && err.status < 500) {
    return new GatewayError(err.status, err.message || `The request failed with status ${err.status}.`)
  }
  return new GatewayError(
    500,
    `The server had an error while processing your request. Quote request id ${requestId} when reporting it.`,
    { code: 'internal_error' },
  )
}

/** Whole seconds in 1..60 from a `retry-after-ms` or `retry-after` (seconds or HTTP date) header; 1 if absent. */
export function retryAfterSeconds(retryAfterMs: string | null, retryAfter: string | null, now = Date.now()): number {
  let seconds = Number.NaN
  if (retryAfterMs?.trim()) seconds = Number(retryAfterMs) / 1000
  if (!Number.isFinite(seconds) && retryAfter?.trim()) {
    seconds = Number(retryAfter)
    if (!Number.isFinite(seconds)) seconds = (Date.parse(retryAfter) - now) / 1000
  }
  if (!Number.isFinite(seconds)) return 1
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(seconds)))
}
