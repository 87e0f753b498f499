import { errorTypeFor } from './error-type.ts'

/**
 * The event that ends a stream which failed after its headers were sent (a 200 cannot become an error any more):
 * an OpenAI-shaped error as the stream's last event, with no `[DONE]` after it. The gateway and the provider node
 * end their streams with the same one.
 */
export function sseErrorEvent(message: string, code = 'upstream_error'): Buffer {
  const error = { message, type: errorTypeFor(502), param: null, code }
  return Buffer.from(`data: ${JSON.stringify({ error })}\n\n`)
}
