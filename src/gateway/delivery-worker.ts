import { parentPort, workerData } from 'node:worker_threads'
import { request } from 'undici'
import { type VerifyDeliveryParams, verifyDelivery } from '../attestation/response-verifier.ts'
import { createProviderAgent } from '../providers/provider-agent.ts'

/** One delivery to check, as the gateway posts it: small, the bodies already reduced to their sha256. */
export type DeliveryJob = { id: number; delivery: Omit<VerifyDeliveryParams, 'fetchJson'> }

const dispatcher = createProviderAgent({ allowPrivate: Boolean(workerData?.allowPrivate), keepAliveTimeoutMs: 60_000 })

async function fetchJson(url: string, timeoutMs: number) {
  const res = await request(url, { dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  return { status: res.statusCode, json: res.statusCode === 200 ? await res.body.json() : await res.body.dump() }
}

// The whole check (fetching the signature, secp256k1 recovery at about a millisecond of CPU) runs here, beside the
// gateway's event loop, so the next request never waits behind the last one's verification.
parentPort?.on('message', async ({ id, delivery }: DeliveryJob) => {
  const receipt = await verifyDelivery({ ...delivery, fetchJson }).catch((err: Error) => ({
    status: 'unverified' as const,
    level: null,
    detail: `verification failed: ${err.message}`,
  }))
  parentPort!.postMessage({ id, receipt })
})
