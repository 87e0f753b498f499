import { readUpstreamError } from '../http/upstream-error-body.ts'
import { ProviderError } from './provider-error.ts'

/**
 * A backend's HTTP error as the node's own error: the status is kept (a 5xx becomes 502, since the fault is the
 * backend's, not the node's), the message and param are the backend's in OpenAI's words, and Retry-After survives so
 * clients can back off.
 */
export function upstreamError(status: number, text: string, retryAfter?: string): ProviderError {
  const { message, param, code } = readUpstreamError(text)
  const headers: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {}
  if (status >= 500)
    return new ProviderError(502, 'upstream_error', `the model backend failed (${status}): ${message}`, { headers })
  if (status === 429) return new ProviderError(429, code ?? 'rate_limit_exceeded', message, { headers })
  if (status === 404) return new ProviderError(404, code ?? 'model_not_found', message, { param })
  if (/maximum context length|context window/i.test(message))
    return new ProviderError(400, 'context_length_exceeded', message, { param })
  return new ProviderError(status === 422 ? 400 : status, code ?? 'upstream_rejected', message, { param })
}
