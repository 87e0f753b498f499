import type { Agent } from 'undici'
import { type Receipt, type VerifyDeliveryParams, verifyDelivery } from '../attestation/response-verifier.ts'
import { fetchJsonGuarded } from '../http/guarded-json.ts'

/** One delivery to check: the bodies already reduced to their sha256, so nothing large is held while it waits. */
export type Delivery = Omit<VerifyDeliveryParams, 'fetchJson'>

/**
 * Verifies delivered responses after they were relayed: takes the signature the provider sent with the answer, or
 * fetches it through the gateway's keep-alive pool, and recovers its signer (libsecp256k1, about 50 µs), on the event
 * loop. It once ran on a worker thread, when recovery was a millisecond of JavaScript; at native speed the worker's
 * own isolate (30–50 MB) and message passing cost more than the check.
 */
export class DeliveryVerifier {
  readonly #dispatcher: Agent
  #closed = false
  readonly #running = new Set<Promise<Receipt>>()

  constructor(params: { dispatcher: Agent }) {
    this.#dispatcher = params.dispatcher
  }

  // A signature is a few hundred bytes: a provider sending more is cut off, as one redirecting is refused.
  readonly #fetchJson = (url: string, timeoutMs: number) =>
    fetchJsonGuarded(this.#dispatcher, url, { timeoutMs, maxBytes: 64 * 1024 })

  async verify(delivery: Delivery): Promise<Receipt> {
    if (this.#closed) return { status: 'unverified', level: null, detail: 'the gateway is shutting down' }
    const check = verifyDelivery({ ...delivery, fetchJson: this.#fetchJson }).catch((err: Error) => ({
      status: 'unverified' as const,
      level: null,
      detail: `verification failed: ${err.message}`,
    }))
    this.#running.add(check)
    try {
      return await check
    } finally {
      this.#running.delete(check)
    }
  }

  /** Takes no more checks, and resolves once the ones under way have ended. */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.allSettled([...this.#running])
  }
}
