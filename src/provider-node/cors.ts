import type { Context, MiddlewareHandler } from 'hono'
import { cors } from 'hono/cors'

/**
 * What every answer of the node carries for browsers: 0G brokers expose these (SDK PR #52: /v1/quote had no CORS),
 * and a browser app must be able to read the response key and signature of a call, and a speech call's duration and
 * fee (which 0G sends in headers, the body being audio).
 */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': [
    'ZG-Res-Key',
    'ZG-Res-Signature',
    'Retry-After',
    'X-0G-Audio-Duration-Seconds',
    'X-0G-Fee',
    'ZG-Audio-Duration-Source',
  ].join(','),
}

type CorsEnv = { Variables: { corsOnResponse?: boolean } }

/**
 * CORS for the node's API: preflights answered by Hono's middleware, and the headers above on every other answer.
 * Those are set afterwards, on the Response the route returned, unless the route built them in already (the proxy
 * routes, see {@link corsOnResponse}): Hono's own middleware prepares them on the context before the route runs,
 * and Hono then copies every returned Response to merge them in, which turns a buffered body into a web stream
 * and takes it off @hono/node-server's fast path (about 0.1 ms of a call run cold).
 */
export function corsHeaders(): MiddlewareHandler<CorsEnv> {
  const preflight = cors({ origin: '*', exposeHeaders: CORS_HEADERS['access-control-expose-headers']!.split(',') })
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') return preflight(c, next)
    await next()
    if (c.get('corsOnResponse')) return
    for (const [name, value] of Object.entries(CORS_HEADERS)) c.res.headers.set(name, value)
  }
}

/** Tells corsHeaders() that the route's answer carries CORS_HEADERS already (or was written to the socket with them). */
export function corsOnResponse(c: Context): void {
  ;(c as Context<CorsEnv>).set('corsOnResponse', true)
}
