/** A key's limits per minute; undefined means unlimited. */
export type RateLimits = { rpm?: number; tpm?: number }

export type RateDecision = {
  ok: boolean
  /** Seconds until the window that refused frees up (1..60), when refused. */
  retryAfter: number
  headers: Record<string, string>
}

type Window = { start: number; requests: number; tokens: number }

const WINDOW_MS = 60_000

/**
 * Requests and tokens per minute per key, in this process's memory: fixed one-minute windows opened by a key's first
 * call. Requests count on admission; tokens are checked against the call's estimate on admission and charged with
 * the real count after the answer, so the remaining tokens may go negative (as 0G brokers allow).
 */
export class RateLimiter {
  readonly #windows = new Map<string, Window>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Admits one request estimated at `tokens`, counting it, or refuses without counting anything. */
  admit(keyId: string, limits: RateLimits, tokens: number): RateDecision {
    const w = this.#window(keyId)
    const overRequests = limits.rpm !== undefined && w.requests + 1 > limits.rpm
    // An estimate larger than the whole limit still passes in an empty window, or that call could never run.
    const overTokens = limits.tpm !== undefined && w.tokens > 0 && w.tokens + tokens > limits.tpm
    if (overRequests || overTokens) {
      return { ok: false, retryAfter: this.#resetSeconds(w), headers: this.#headers(w, limits) }
    }
    w.requests++
    return { ok: true, retryAfter: 0, headers: this.#headers(w, limits) }
  }

  /** Charges the tokens a call really used to the key's current window. */
  charge(keyId: string, tokens: number): void {
    if (tokens > 0) this.#window(keyId).tokens += tokens
  }

  #window(keyId: string): Window {
    const now = this.#now()
    let w = this.#windows.get(keyId)
    if (!w || now - w.start >= WINDOW_MS) {
      w = { start: now, requests: 0, tokens: 0 }
      this.#windows.set(keyId, w)
    }
    return w
  }

  #resetSeconds(w: Window): number {
    return Math.min(60, Math.max(1, Math.ceil((w.start + WINDOW_MS - this.#now()) / 1000)))
  }

  #headers(w: Window, limits: RateLimits): Record<string, string> {
    const reset = `${this.#resetSeconds(w)}s`
    const headers: Record<string, string> = {}
    if (limits.rpm !== undefined) {
      headers['x-ratelimit-limit-requests'] = String(limits.rpm)
      headers['x-ratelimit-remaining-requests'] = String(Math.max(0, limits.rpm - w.requests))
      headers['x-ratelimit-reset-requests'] = reset
    }
    if (limits.tpm !== undefined) {
      headers['x-ratelimit-limit-tokens'] = String(limits.tpm)
      headers['x-ratelimit-remaining-tokens'] = String(limits.tpm - w.tokens)
      headers['x-ratelimit-reset-tokens'] = reset
    }
    return headers
  }
}
