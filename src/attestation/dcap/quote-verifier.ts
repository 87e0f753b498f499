import { dirname, join, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { Collateral } from './collateral.ts'
import { type QuoteVerification, QuoteVerificationError, type VerifyQuoteOptions } from './verify-quote.ts'

export type WorkerRequest = {
  id: number
  quote: Uint8Array
  collateral: Collateral
  nowMs: number
  options: VerifyQuoteOptions
}
export type WorkerReply =
  | { id: number; result: QuoteVerification }
  | { id: number; error: { message: string; stage: 'quote' | 'crl' } }

export type QuoteVerifierOptions = {
  /** Per job, from submission (queueing included); on expiry the worker is replaced. Default 10 s. */
  timeoutMs?: number
  /** The worker script; default quote-worker.ts beside this file, or its build in dist/. */
  workerUrl?: URL
}

type Pending = { resolve: (r: QuoteVerification) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/**
 * Runs verifyQuote in one lazily started worker thread, so ≈15 ms of elliptic-curve work per quote never blocks the
 * gateway's event loop. The worker is unref'd while idle (it never keeps a process alive) and ref'd while a job is
 * out, so a CLI awaiting a verdict does not exit under it.
 */
export class QuoteVerifier {
  readonly #timeoutMs: number
  readonly #workerUrl: URL
  readonly #pending = new Map<number, Pending>()
  #worker: Worker | undefined
  #nextId = 1
  #closed = false

  constructor(options: QuoteVerifierOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#workerUrl = options.workerUrl ?? defaultWorkerUrl()
  }

  verify(
    quote: Uint8Array,
    collateral: Collateral,
    now: Date = new Date(),
    options: VerifyQuoteOptions = {},
  ): Promise<QuoteVerification> {
    if (this.#closed) return Promise.reject(new Error('QuoteVerifier is closed'))
    const worker = this.#ensureWorker()
    const id = this.#nextId++
    return new Promise<QuoteVerification>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#failAll(new Error(`quote verification timed out after ${this.#timeoutMs} ms`))
      }, this.#timeoutMs)
      timer.unref()
      this.#pending.set(id, { resolve, reject, timer })
      worker.ref()
      const request: WorkerRequest = { id, quote: Uint8Array.from(quote), collateral, nowMs: now.getTime(), options }
      worker.postMessage(request)
    })
  }

  /** Stops the worker; pending jobs are rejected. */
  async close(): Promise<void> {
    this.#closed = true
    const worker = this.#worker
    this.#failAll(new Error('QuoteVerifier closed'))
    await worker?.terminate()
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker
    const worker = new Worker(this.#workerUrl)
    worker.unref()
    worker.on('message', (reply: WorkerReply) => this.#settle(reply))
    worker.on('error', (err) => this.#failAll(new Error(`quote worker failed: ${err.message}`)))
    worker.on('exit', (code) => {
      if (this.#worker === worker) this.#failAll(new Error(`quote worker exited with code ${code}`))
    })
    this.#worker = worker
    return worker
  }

  #settle(reply: WorkerReply): void {
    const job = this.#pending.get(reply.id)
    if (!job) return
    this.#pending.delete(reply.id)
    clearTimeout(job.timer)
    if (this.#pending.size === 0) this.#worker?.unref()
    if ('result' in reply) job.resolve(reply.result)
    else job.reject(new QuoteVerificationError(reply.error.message, reply.error.stage))
  }

  /** A stuck or dead worker takes every job queued behind it down with it; the next verify starts a fresh one. */
  #failAll(err: Error): void {
    const worker = this.#worker
    this.#worker = undefined
    for (const job of this.#pending.values()) {
      clearTimeout(job.timer)
      job.reject(err)
    }
    this.#pending.clear()
    void worker?.terminate()
  }
}

/**
 * From the sources this file sits beside quote-worker.ts; in the bundle (scripts/build.ts) it is inlined into some
 * chunk of dist/, and the worker is its own entry at dist/attestation/dcap/quote-worker.js.
 */
function defaultWorkerUrl(): URL {
  const self = fileURLToPath(import.meta.url)
  if (self.endsWith('.ts')) return pathToFileURL(join(dirname(self), 'quote-worker.ts'))
  const dist = self.lastIndexOf(`${sep}dist${sep}`)
  if (dist < 0) throw new Error(`cannot locate the quote worker from ${self}`)
  return pathToFileURL(join(self.slice(0, dist), 'dist', 'attestation', 'dcap', 'quote-worker.js'))
}
