import { withUsageCost } from './fee-annotation.ts'

/**
 * The headers of a relayed event stream. `transfer-encoding: chunked` is what tells @hono/node-server that the body is
 * open-ended: without it, the server first tries to read the body to the end to size it, and waits a timer turn
 * (1-2 ms) before it sends anything, on every stream. No caching, and no buffering by proxies (nginx) on the way.
 */
export const SSE_HEADERS = {
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
  'transfer-encoding': 'chunked',
} as const

const LF = 0x0a
const CR = 0x0d

/** Where the blank line that ends the first complete event in `buf` (from `from`) ends, or -1. */
function eventEnd(buf: Buffer, from: number): number {
  for (let i = buf.indexOf(LF, from); i !== -1; i = buf.indexOf(LF, i + 1)) {
    let j = i + 1
    if (buf[j] === CR) j++
    if (buf[j] === LF) return j + 1
  }
  return -1
}

function dataOf(event: string): string {
  return event
    .split(/\r?\n/)
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(l[5] === ' ' ? 6 : 5))
    .join('\n')
}

/**
 * Watches an OpenAI SSE stream event by event as it is relayed: captures the `usage` the backend reports, notes
 * `[DONE]` and error events, and drops the usage-only chunk (`choices: []`) when the client did not ask for it
 * (the node asks the backend for usage on every stream, so it can bill). Bytes are forwarded unchanged otherwise,
 * each complete event as soon as its blank line arrives.
 */
export class SseUsageTap {
  usage: Record<string, unknown> | undefined
  done = false
  errored = false
  /** The `[DONE]` event, held back when the caller asked to send it itself (see `holdDone`). */
  heldDone: Buffer | undefined
  readonly #dropUsageChunk: boolean
  readonly #feeOf: ((usage: Record<string, unknown>) => bigint | undefined) | undefined
  readonly #holdDone: boolean
  #pending: Buffer = Buffer.alloc(0)

  /**
   * `feeOf` prices a usage chunk that is shown: its usage then carries `cost` (0G). `holdDone` keeps the `[DONE]`
   * event out of what push() returns, for the caller to send once the call is recorded.
   */
  constructor(params: {
    dropUsageChunk: boolean
    feeOf?: (usage: Record<string, unknown>) => bigint | undefined
    holdDone?: boolean
  }) {
    this.#dropUsageChunk = params.dropUsageChunk
    this.#feeOf = params.feeOf
    this.#holdDone = params.holdDone ?? false
  }

  /** Takes upstream bytes; returns the bytes to send to the client now (complete events only). */
  push(chunk: Buffer): Buffer {
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
    const out: Buffer[] = []
    let start = 0
    for (let end = eventEnd(buf, 0); end !== -1; end = eventEnd(buf, start)) {
      const event = this.#keep(buf.subarray(start, end))
      if (event) out.push(event)
      start = end
    }
    this.#pending = start < buf.length ? Buffer.from(buf.subarray(start)) : Buffer.alloc(0)
    return out.length === 1 ? out[0]! : Buffer.concat(out)
  }

  /** Bytes of an unfinished last event, at the end of the stream. */
  flush(): Buffer {
    const rest = this.#pending
    this.#pending = Buffer.alloc(0)
    return rest
  }

  /** The event to pass on (as it came, or with its usage priced), or null to drop it. */
  #keep(event: Buffer): Buffer | null {
    // Chunks carry "usage":null until the last one: only a usage object is worth parsing.
    const hasUsage = event.indexOf('"usage":{') !== -1 || event.indexOf('"usage": {') !== -1
    const hasError = event.indexOf('"error"') !== -1
    if (!hasUsage && !hasError) {
      if (event.indexOf('[DONE]') !== -1 && dataOf(event.toString()).trim() === '[DONE]') {
        this.done = true
        if (this.#holdDone) {
          this.heldDone = Buffer.from(event)
          return null
        }
      }
      return event
    }
    let parsed: Record<string, unknown>
    try {
      parsed = JSON.parse(dataOf(event.toString()))
    } catch {
      return event
    }
    if (parsed.error) this.errored = true
    if (parsed.usage && typeof parsed.usage === 'object') {
      this.usage = parsed.usage as Record<string, unknown>
      if (this.#dropUsageChunk && Array.isArray(parsed.choices) && parsed.choices.length === 0) return null
      const fee = this.#feeOf?.(this.usage)
      if (fee !== undefined) return Buffer.from(withUsageCost(event, fee))
    }
    return event
  }
}
