import type { Handler, NotFoundHandler } from 'hono'
import { errorResponse, GatewayError, notFound } from './openai-error.ts'
import { requestIdOf } from './request-id.ts'

/**
 * `app.notFound` for the gateway: an OpenAI 404 instead of hono's text/plain "404 Not Found", which OpenAI SDKs
 * would report as a bodiless error (acceptance case 6).
 */
export const notFoundHandler: NotFoundHandler = (c) =>
  errorResponse(notFound(`Invalid URL (${c.req.method} ${c.req.path}).`, 'unknown_url'), requestIdOf(c))

/**
 * A handler answering 405 with an `Allow` header, for a known path asked with the wrong method. Register it after
 * the real routes of the path, e.g. `app.all('/v1/chat/completions', methodNotAllowed(['POST']))`.
 */
export function methodNotAllowed(allowed: readonly string[]): Handler {
  const allow = allowed.join(', ')
  return (c) =>
    errorResponse(
      new GatewayError(405, `Invalid method for URL (${c.req.method} ${c.req.path}); use ${allow}.`, {
        code: 'method_not_allowed',
        headers: { allow },
      }),
      requestIdOf(c),
    )
}
