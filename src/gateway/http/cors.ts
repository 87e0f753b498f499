import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { MiddlewareHandler } from 'hono'
import { requestHeader } from '../../http/node-request.ts'
import { GatewayError } from './openai-error.ts'

/** The response headers a browser app may read: the request id, the gateway's own, and what clients back off on. */
export const EXPOSED_HEADERS = [
  'x-request-id',
  'x-zg-provider',
  'x-zg-verification',
  'x-zg-receipt',
  'x-zg-fee',
  'x-should-retry',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-0g-audio-duration-seconds',
  'x-0g-fee',
].join(', ')

// The request headers a preflight asks for are echoed: OpenAI's browser SDK adds x-stainless-* ones that change.
const ALLOWED_METHODS = 'GET, POST, DELETE, OPTIONS'
const PREFLIGHT_MAX_AGE_SECONDS = '600'

/** The origins a browser app may call the gateway from. */
export type CorsOrigins = readonly string[]

/** The origins the dev stack allows: any port on the loopback host names. */
export const LOCALHOST_ORIGINS: CorsOrigins = ['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*']

/**
 * Compiles allowed origins: `*` (any), an exact origin (`https://app.example`), or one whose port is `*`
 * (`http://localhost:*`). Anything else is a configuration error, reported at start-up rather than never matching.
 */
export function corsMatcher(origins: CorsOrigins): (origin: string) => boolean {
  const exact = new Set<string>()
  const anyPort: string[] = []
  let any = false
  for (const raw of origins) {
    const origin = raw.trim().replace(/\/+$/, '')
    if (origin === '*') any = true
    else if (/^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+):\*$/i.test(origin))
      anyPort.push(origin.slice(0, -1).toLowerCase())
    else if (/^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(origin)) exact.add(origin.toLowerCase())
    else throw new Error(`not an allowed-origin pattern: "${raw}" (use *, scheme://host[:port] or scheme://host:*)`)
  }
  return (origin) => {
    if (any) return true
    const o = origin.toLowerCase()
    if (exact.has(o)) return true
    for (const prefix of anyPort) if (o.startsWith(prefix) && /^\d{1,5}$/.test(o.slice(prefix.length))) return true
    return false
  }
}

export type CorsEnv = { Variables: { corsHeaders?: Record<string, string> } }

/**
 * CORS for browser apps. A preflight is answered here, before authentication (browsers send no credentials with
 * it). An allowed origin's other requests get their headers on whatever the route answers; a route that writes its
 * response straight to the socket (a stream) takes them from the context's `corsHeaders`. Requests without an Origin (SDKs,
 * curl) pass untouched.
 */
export function gatewayCors(origins: CorsOrigins): MiddlewareHandler<CorsEnv> {
  const allowed = corsMatcher(origins)
  const wildcard = origins.some((o) => o.trim() === '*')
  return async (c, next) => {
    const origin = requestHeader(c, 'origin')
    if (origin === undefined) return next()
    const ok = allowed(origin)
    const preflight = c.req.method === 'OPTIONS' && requestHeader(c, 'access-control-request-method') !== undefined
    if (preflight) {
      if (!ok) {
        throw new GatewayError(403, `The origin ${origin} is not allowed to call this gateway.`, {
          code: 'origin_not_allowed',
        })
      }
      const headers: Record<string, string> = {
        'access-control-allow-origin': wildcard ? '*' : origin,
        'access-control-allow-methods': ALLOWED_METHODS,
        'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
        vary: 'Origin, Access-Control-Request-Headers',
      }
      const requested = requestHeader(c, 'access-control-request-headers')
      if (requested) headers['access-control-allow-headers'] = requested
      return new Response(null, { status: 204, headers })
    }
    if (!ok) return next()
    const headers = {
      'access-control-allow-origin': wildcard ? '*' : origin,
      'access-control-expose-headers': EXPOSED_HEADERS,
      vary: 'Origin',
    }
    c.set('corsHeaders', headers)
    await next()
    if (c.res === RESPONSE_ALREADY_SENT) return
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value)
  }
}
