import { Worker } from 'node:worker_threads'
import type { Receipt } from '../attestation/response-verifier.ts'
import type { DeliveryJob } from './delivery-worker.ts'

// In the repository the worker runs from its TypeScript source; in the published package from dist/.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './delivery-worker.ts' : './delivery-worker.js',
  import.meta.url,
)

/**
 * Verifies delivered responses on a worker thread: the gateway checks every response, and doing that on the event
 * loop (a signature fetch and an ECDSA recovery each) would add to the latency of whatever request comes next.
 * The worker starts on first use, and again if it dies (checks in flight then come back unverified).
 */
export class DeliveryVerifier {
  #worker: Worker | undefined
  readonly #pending = new Map<number, (receipt: Receipt) => void>()
  readonly #allowPrivate: boolean
  readonly #log: (line: string) => void
  #next = 0

  constructor(params: { allowPrivate: boolean; log?: (line: string) => void }) {
    this.#allowPrivate = params.allowPrivate
    this.#log = params.log ?? (() => {})
  }

  #spawn(): Worker {
    if (this.#worker) return this.#worker
    const worker = new Worker(WORKER_URL, { workerData: { allowPrivate: this.#allowPrivate } })
    worker.unref()
    worker.on('message', ({ id, receipt }: { id: number; receipt: Receipt }) => {
      this.#pending.get(id)?.(receipt)
      this.#pending.delete(id)
      if (this.#pending.size === 0) worker.unref()
    })
    const fail = (why: string) => {
      if (this.#worker !== worker) return
      this.#worker = undefined
      this.#log(`delivery verifier worker stopped: ${why}`)
      for (const resolve of this.#pending.values())
        resolve({ status: 'unverified', level: null, detail: `verifier stopped: ${why}` })
      this.#pending.clear()
    }
    worker.on('error', (err) => fail(err.message))
    worker.on('exit', (code) => fail(`exit ${code}`))
    this.#worker = worker
    return worker
  }

  verify(delivery: DeliveryJob['delivery']): Promise<Receipt> {
    const worker = this.#spawn()
    const id = this.#next++
    return new Promise<Receipt>((resolve) => {
      this.#pending.set(id, resolve)
      worker.ref()
      worker.postMessage({ id, delivery } satisfies DeliveryJob)
    })
  }

  async close(): Promise<void> {
    const worker = this.#worker
    this.#worker = undefined
    await worker?.terminate()
  }
}
