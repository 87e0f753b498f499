import { setTimeout as sleep } from 'node:timers/promises'
import type { HttpBindings } from '@hono/node-server'
import type { MiddlewareHandler } from 'hono'
import { vllmErrorBody } from './errors.ts'

/**
 * Fault injection, for tests of what sits in front of a backend (provider node, gateway). A request carrying the
 * header `x-dev-fault` gets, instead of a normal answer:
 *
 * - `error-before`: HTTP 500 (vLLM's error JSON) before any byte of an answer.
 * - `status-429`: HTTP 429 with `Retry-After: 1`.
 * - `hang`: no response at all, not even headers, until the client gives up (the request then counts as aborted).
 * - `die-mid-stream`: the normal answer starts (a stream: its first 3 events; a JSON body: its first half), then the
 *   connection is destroyed, with no `data: [DONE]` and no chunked-encoding terminator.
 * - `split-utf8`: the normal answer, but every write that holds a multi-byte character is sent as two writes, a few
 *   ms apart, cut inside that character: relays and parsers must buffer bytes, not decode each read on its own.
 *
 * Any other value is a 400, so a typo in a test fails loudly rather than testing the happy path.
 */
export const FAULT_HEADER = 'x-dev-fault'

export const FAULTS = ['error-before', 'status-429', 'hang', 'die-mid-stream', 'split-utf8'] as const
export type Fault = (typeof FAULTS)[number]

/** SSE events let through before a die-mid-stream kill: the role chunk and two tokens. */
const EVENTS_BEFORE_DEATH = 3

/** Time for the bytes already written to leave the socket before it is destroyed. */
const FLUSH_MS = 20

/** The gap between the two halves of a split-utf8 write, so that they leave in separate TCP segments. */
const SPLIT_GAP_MS = 10

/** Responses a die-mid-stream fault destroyed: server.ts does not count them as client aborts. */
const killed = new WeakSet<object>()

export function killedByFault(response: object): boolean {
  return killed.has(response)
}

export function faultInjection(): MiddlewareHandler {
  return async (c, next) => {
    const fault = c.req.header(FAULT_HEADER)
    if (fault === undefined) return next()
    switch (fault) {
      case 'error-before':
        return c.json(vllmErrorBody(500, 'Injected fault: error-before'), 500)
      case 'status-429':
        return c.json(vllmErrorBody(429, 'Injected fault: rate limited'), 429, { 'retry-after': '1' })
      case 'hang': {
        const signal = c.req.raw.signal
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve()
          signal.addEventListener('abort', () => resolve(), { once: true })
        })
        // Nobody is listening any more: this response is never written.
        return c.body(null)
      }
      case 'die-mid-stream': {
        await next()
        const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing
        const kill = (controller: ReadableStreamDefaultController<Uint8Array>) => {
          setTimeout(() => {
            if (!outgoing) return controller.error(new Error('Injected fault: die-mid-stream'))
            killed.add(outgoing)
            outgoing.destroy()
          }, FLUSH_MS)
        }
        const sse = c.res.headers.get('content-type')?.startsWith('text/event-stream') ?? false
        const body = sse
          ? eventsThenDie(c.res.body, kill)
          : halfThenDie(new Uint8Array(await c.res.arrayBuffer()), kill)
        const headers = new Headers(c.res.headers)
        headers.delete('content-length')
        c.res = new Response(body, { status: c.res.status, headers })
        return
      }
      case 'split-utf8': {
        await next()
        if (c.res.body) c.res = new Response(splitInsideCharacters(c.res.body), c.res)
        return
      }
      default:
        return c.json(vllmErrorBody(400, `Unknown ${FAULT_HEADER} value: ${fault} (known: ${FAULTS.join(', ')})`), 400)
    }
  }
}

type Kill = (controller: ReadableStreamDefaultController<Uint8Array>) => void

function halfThenDie(bytes: Uint8Array, kill: Kill): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes.subarray(0, Math.floor(bytes.length / 2)))
      kill(controller)
    },
  })
}

/** Passes the first events through, then stops the generation behind them and kills the connection. */
function eventsThenDie(body: ReadableStream<Uint8Array> | null, kill: Kill): ReadableStream<Uint8Array> {
  const reader = body!.getReader()
  let events = 0
  return new ReadableStream({
    async pull(controller) {
      if (events >= EVENTS_BEFORE_DEATH) return
      const { done, value } = await reader.read()
      if (done) return kill(controller)
      controller.enqueue(value)
      events += Buffer.from(value).toString('latin1').split('\n\n').length - 1
      if (events >= EVENTS_BEFORE_DEATH) {
        await reader.cancel()
        kill(controller)
      }
    },
    cancel: (reason) => reader.cancel(reason),
  })
}

/** Cuts each chunk after the lead byte of its first multi-byte UTF-8 sequence, and sends the rest a little later. */
function splitInsideCharacters(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read()
      if (done) return controller.close()
      // 0xC0 and above is the lead byte of a 2- to 4-byte sequence.
      const lead = value.findIndex((byte) => byte >= 0xc0)
      if (lead < 0) return controller.enqueue(value)
      controller.enqueue(value.subarray(0, lead + 1))
      await sleep(SPLIT_GAP_MS)
      controller.enqueue(value.subarray(lead + 1))
    },
    cancel: (reason) => reader.cancel(reason),
  })
}
