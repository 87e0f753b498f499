import { Worker } from 'node:worker_threads'
import type { Address } from 'viem'
import type { ChatSignature, ResponseSignatureFailure } from './response-signature.ts'
import type { SignatureJob } from './signature-worker.ts'

type Result = { ok: true } | { ok: false; reason: ResponseSignatureFailure }

// In the repository the worker runs from its TypeScript source; in the published package from dist/.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './signature-worker.ts' : './signature-worker.js',
  import.meta.url,
)

/** Copies `bytes` into an ArrayBuffer of its own, so it can be transferred to the worker. */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer
}

/**
 * Response-signature checks on a worker thread. The gateway verifies every delivered response; doing the ECDSA
 * recovery on the event loop would add it to the latency of whatever request comes next.
 */
export class SignatureVerifierPool {
  #worker: Worker | undefined
  readonly #pending = new Map<number, (result: Result) => void>()
  readonly #log: (line: string) => void
  #next = 0

  constructor(params: { log?: (line: string) => void } = {}) {
    this.#log = params.log ?? (() => {})
  }

  /** The worker, started on first use and again after it died (pending checks then fail as unverifiable). */
  #spawn(): Worker {
    if (this.#worker) return this.#worker
    const worker = new Worker(WORKER_URL)
    worker.unref()
    worker.on('message', ({ id, result }: { id: number; result: Result }) => {
      this.#pending.get(id)?.(result)
      this.#pending.delete(id)
      if (this.#pending.size === 0) worker.unref()
    })
    const fail = (why: string) => {
      if (this.#worker !== worker) return
      this.#worker = undefined
      this.#log(`signature verifier worker stopped: ${why}`)
      for (const resolve of this.#pending.values()) resolve({ ok: false, reason: 'malformed' })
      this.#pending.clear()
    }
    worker.on('error', (err) => fail(err.message))
    worker.on('exit', (code) => fail(`exit ${code}`))
    this.#worker = worker
    return worker
  }

  verify(params: {
    signature: ChatSignature
    expectedSigner: Address
    requestBody?: Uint8Array
    requestHash?: string
    responseBody: Uint8Array
  }): Promise<Result> {
    const id = this.#next++
    const job: SignatureJob = {
      id,
      signature: params.signature,
      expectedSigner: params.expectedSigner,
      ...(params.requestBody ? { requestBody: ownBuffer(params.requestBody) } : { requestHash: params.requestHash }),
      responseBody: ownBuffer(params.responseBody),
    }
    const transfer = [job.responseBody, ...(job.requestBody ? [job.requestBody] : [])]
    const worker = this.#spawn()
    return new Promise<Result>((resolve) => {
      this.#pending.set(id, resolve)
      worker.ref()
      worker.postMessage(job, transfer)
    })
  }

  async close(): Promise<void> {
    const worker = this.#worker
    this.#worker = undefined
    await worker?.terminate()
  }
}
