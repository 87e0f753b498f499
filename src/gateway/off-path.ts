/**
 * The work that follows a delivery (its usage record, its verification), run where it delays no client.
 *
 * Run at once after a response went out, it lands exactly when a client that calls back to back sends its next
 * request, and that request waits for it. Queued here instead, it runs at the gateway's next idle moment: right after
 * a request was handed to a provider (the gateway then waits on the provider for longer than this work takes), or
 * after `maxDelayMs` when no request comes. Under load the queue drains every turn of the event loop, as often as
 * the work would have run anyway.
 */
export class OffPathQueue {
  readonly #maxDelayMs: number
  #jobs: Array<() => void> = []
  #timer: NodeJS.Timeout | undefined
  #immediate: NodeJS.Immediate | undefined

  constructor(params: { maxDelayMs?: number } = {}) {
    this.#maxDelayMs = params.maxDelayMs ?? 5
  }

  /** Queues `job`; it runs within `maxDelayMs` at the latest. A job that throws is its own business: it must catch. */
  add(job: () => void): void {
    this.#jobs.push(job)
    this.#timer ??= setTimeout(this.#drain, this.#maxDelayMs)
  }

  /** The gateway is about to wait (on a provider): a good moment for what is queued. */
  idle(): void {
    if (this.#jobs.length && !this.#immediate) this.#immediate = setImmediate(this.#drain)
  }

  /** How many jobs wait. */
  get size(): number {
    return this.#jobs.length
  }

  /** Runs everything queued now (before the gateway closes its stores). */
  flush(): void {
    this.#drain()
  }

  readonly #drain = () => {
    clearTimeout(this.#timer)
    clearImmediate(this.#immediate)
    this.#timer = undefined
    this.#immediate = undefined
    const jobs = this.#jobs
    this.#jobs = []
    for (const job of jobs) job()
  }
}
