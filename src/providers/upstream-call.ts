import type { IncomingHttpHeaders } from 'node:http'
import { type Dispatcher, errors } from 'undici'
import { ClientGone, type ClientSignal, clientAborted } from '../http/node-request.ts'

export type UpstreamStart = { statusCode: number; headers: IncomingHttpHeaders }

/**
 * One call to a provider, as undici's dispatch() handler: the answer's status and headers when they come
 * (`started`), then its body handed over chunk by chunk as the parser produces it. undici's `request()` would wrap
 * the same in a Readable per response and an AsyncResource per call and resolve through both; a relay that writes
 * every chunk straight on has no use for either (some 0.05 ms of a call run cold, and CPU on every chunk).
 *
 * Chunks that come before anyone takes the body up (the first event usually comes with the headers) are kept and
 * handed over at once by relay(). Backpressure: pause() and resume() stop and restart reading the provider's socket.
 */
export class UpstreamCall implements Dispatcher.DispatchHandler {
  readonly started: Promise<UpstreamStart>
  /** The answer's trailers, once it has ended. */
  trailers: IncomingHttpHeaders = {}
  #resolve!: (start: UpstreamStart) => void
  #reject!: (err: Error) => void
  #controller: Dispatcher.DispatchController | undefined
  #begun = false
  #kept: Buffer[] = []
  #onData: ((chunk: Buffer) => void) | undefined
  #onEnd: (() => void) | undefined
  #onError: ((err: Error) => void) | undefined
  #ended = false
  #error: Error | undefined
  #abortReason: Error | undefined
  readonly #signal: ClientSignal
  readonly #onAbort = () => this.abort()

  constructor(signal: ClientSignal) {
    this.started = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.#signal = signal
    if (clientAborted(signal)) this.#abortReason = new errors.RequestAbortedError()
    else if (signal instanceof ClientGone) signal.once('abort', this.#onAbort)
    else signal.addEventListener('abort', this.#onAbort, { once: true })
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#abortReason) controller.abort(this.#abortReason)
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return
    this.#begun = true
    this.#resolve({ statusCode, headers })
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#onData) this.#onData(chunk)
    else this.#kept.push(chunk)
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.trailers = trailers ?? {}
    this.#ended = true
    this.#release()
    this.#onEnd?.()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#error = err
    this.#release()
    if (!this.#begun) this.#reject(err)
    else this.#onError?.(err)
  }

  /** Hands over the body: what came already, at once, then every chunk as it comes; then its end or its failure. */
  relay(onData: (chunk: Buffer) => void, onEnd: () => void, onError: (err: Error) => void): void {
    const kept = this.#kept
    this.#kept = []
    this.#onData = onData
    this.#onEnd = onEnd
    this.#onError = onError
    for (const chunk of kept) onData(chunk)
    if (this.#error) onError(this.#error)
    else if (this.#ended) onEnd()
  }

  /** The whole body; past `maxBytes` the call is aborted and this rejects with an UpstreamTooLarge. */
  bytes(maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      let over = false
      this.relay(
        (chunk) => {
          if (over) return
          size += chunk.length
          if (size <= maxBytes) {
            chunks.push(chunk)
            return
          }
          // What was kept goes at once: a provider sending too much must not hold the gateway's memory.
          over = true
          chunks.length = 0
          const err = new UpstreamTooLarge(maxBytes)
          reject(err)
          this.abort(err)
        },
        () => {
          if (!over) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
        },
        (err) => {
          if (!over) reject(err)
        },
      )
    })
  }

  async text(maxBytes?: number): Promise<string> {
    return (await this.bytes(maxBytes)).toString('utf8')
  }

  pause(): void {
    this.#controller?.pause()
  }

  resume(): void {
    this.#controller?.resume()
  }

  /** Stops the call: the provider's connection is closed; a body being relayed ends with this error. */
  abort(reason: Error = new errors.RequestAbortedError()): void {
    if (this.#ended || this.#error) return
    this.#abortReason ??= reason
    this.#controller?.abort(reason)
  }

  #release(): void {
    const signal = this.#signal
    if (signal instanceof ClientGone) signal.off('abort', this.#onAbort)
    else signal.removeEventListener('abort', this.#onAbort)
  }
}

/** A provider sent more than the gateway reads of it. */
export class UpstreamTooLarge extends Error {
  override name = 'UpstreamTooLarge'
  readonly limit: number

  constructor(limit: number) {
    super(`the answer is larger than ${limit} bytes`)
    this.limit = limit
  }
}

const targets = new Map<string, { origin: string; path: string }>()

/**
 * An upstream base URL (a provider's, a backend's) split for the dispatcher, once per URL rather than parsed again
 * for every call (undici's `request(url)` does, some 15 µs of the request path).
 */
export function dispatchTarget(url: string): { origin: string; path: string } {
  let target = targets.get(url)
  if (!target) {
    const parsed = new URL(url)
    target = { origin: parsed.origin, path: parsed.pathname.replace(/\/+$/, '') }
    if (targets.size >= 4096) targets.clear()
    targets.set(url, target)
  }
  return target
}
