import { ProviderError } from './provider-error.ts'

/** The message inside whatever error body a backend sent: OpenAI/vLLM JSON, FastAPI's detail, or text. */
export function upstreamMessage(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>
    const err = body.error
    if (typeof err === 'string') return err
    if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') {
      return (err as { message: string }).message
    }
    if (typeof body.detail === 'string') return body.detail
    if (body.detail !== undefined) return JSON.stringify(body.detail)
    if (typeof body.message === 'string') return body.message
  } catch {
    // not JSON: the text itself is the message
  }
  return text.trim().slice(0, 2000) || 'no error body'
}

/**
 * A backend's HTTP error as the node's own error: the status is kept (a 5xx becomes 502, since the fault is the
 * backend's, not the node's), the message is the backend's, and Retry-After survives so clients can back off.
 */
export function upstreamError(status: number, text: string, retryAfter?: string): ProviderError {
  const message = upstreamMessage(text)
  const headers: Record<string, string> = retryAfter ? { 'retry-after': retryAfter } : {}
  if (status >= 500)
    return new ProviderError(502, 'upstream_error', `the model backend failed (${status}): ${message}`, { headers })
  if (status === 429) return new ProviderError(429, 'rate_limit_exceeded', message, { headers })
  if (status === 404) return new ProviderError(404, 'model_not_found', message)
  if (/maximum context length|context window/i.test(message))
    return new ProviderError(400, 'context_length_exceeded', message)
  return new ProviderError(status === 422 ? 400 : status, 'upstream_rejected', message)
}
