import { parentPort } from 'node:worker_threads'
import { type ChatSignature, verifyResponseSignature } from './response-signature.ts'

/** One check, as the gateway posts it: the bodies travel as transferred ArrayBuffers, never copied. */
export type SignatureJob = {
  id: number
  signature: ChatSignature
  expectedSigner: `0x${string}`
  requestBody?: ArrayBuffer
  requestHash?: string
  responseBody: ArrayBuffer
}

// secp256k1 recovery in JS costs about a millisecond of CPU: here it runs beside the gateway's event loop, not on it.
parentPort?.on('message', async (job: SignatureJob) => {
  const result = await verifyResponseSignature({
    signature: job.signature,
    expectedSigner: job.expectedSigner,
    ...(job.requestBody ? { requestBody: new Uint8Array(job.requestBody) } : { requestHash: job.requestHash }),
    responseBody: new Uint8Array(job.responseBody),
  }).catch(() => ({ ok: false as const, reason: 'malformed' as const }))
  parentPort!.postMessage({ id: job.id, result })
})
