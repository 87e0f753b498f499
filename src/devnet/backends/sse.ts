/**
 * A server-sent event stream as vLLM and OpenAI write it: one `data: <json>\n\n` event per chunk, then
 * `data: [DONE]\n\n`. The stream is pulled: nothing is generated ahead of what the client reads, and when the client
 * goes away the `signal` given to `produce` aborts, so generation stops at once.
 */
export function sseResponse(
  requestSignal: AbortSignal,
  produce: (signal: AbortSignal) => AsyncIterable<unknown>,
): Response {
  const cancelled = new AbortController()
  const signal = AbortSignal.any([requestSignal, cancelled.signal])
  const encoder = new TextEncoder()
  let events: AsyncIterator<unknown> | undefined
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      events ??= produce(signal)[Symbol.asyncIterator]()
      const { done, value } = await events.next()
      if (done) {
        controller.enqueue(encoder.encode('data: [DONE]\n\n'))
        controller.close()
      } else {
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(value)}\n\n`))
      }
    },
    cancel() {
      cancelled.abort()
    },
  })
  // Open-ended (chunked), so the server sends the headers and the first event at once, as vLLM does, instead of
  // first trying to size the body.
  return new Response(body, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'transfer-encoding': 'chunked',
    },
  })
}
