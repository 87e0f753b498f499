import { parentPort } from 'node:worker_threads'
import type { WorkerReply, WorkerRequest } from './quote-verifier.ts'
import { QuoteVerificationError, verifyQuote } from './verify-quote.ts'

// The worker side of QuoteVerifier: one job at a time, answered by id.
parentPort?.on('message', (job: WorkerRequest) => {
  let reply: WorkerReply
  try {
    reply = { id: job.id, result: verifyQuote(job.quote, job.collateral, new Date(job.nowMs), job.options) }
  } catch (err) {
    const stage = err instanceof QuoteVerificationError ? err.stage : 'quote'
    reply = { id: job.id, error: { message: (err as Error).message, stage } }
  }
  parentPort?.postMessage(reply)
})
