/** A key's limits per minute; undefined means unlimited. */
export type RateLimits = { rpm?: number; tpm?: number }

export type RateDecision = {
  ok: boolean
  /** Seconds until the window that refused frees up (1..60), when refused. */
  retryAfter: number
  headers: Record<string, string>
}

/** One key's current window: when it opened (ms), and what it counted. */
export type Window = { start: number; requests: number; tokens: number }

export const WINDOW_MS = 60_000

/**
 * Counts requests and tokens per key per minute: in this process's memory (RateLimiter), or in Postgres for
 * several instances (postgres-rate-limits.ts).
 */
export interface RateCounter {
  /** Admits one request estimated at `tokens`, counting it, or refuses without counting anything. */
  admit(keyId: string, limits: RateLimits, tokens: number): RateDecision | Promise<RateDecision>
  /** Charges the tokens a call really used to the key's current window. */
  charge(keyId: string, tokens: number): void | Promise<void>
}

/** Whether one more request estimated at `tokens` fits the window. */
export function fits(w: Window, limits: RateLimits, tokens: number): boolean {
  const overRequests = limits.rpm !== undefined && w.requests + 1 > limits.rpm
  // An estimate larger than the whole limit still passes in an empty window, or that call could never run.
  const overTokens = limits.tpm !== undefined && w.tokens > 0 && w.tokens + tokens > limits.tpm
  return !overRequests && !overTokens
}

/** The decision, with the x-ratelimit-* headers OpenAI sends, for window `w` at `now`. */
export function decision(ok: boolean, w: Window, limits: RateLimits, now: number): RateDecision {
  const retryAfter = Math.min(60, Math.max(1, Math.ceil((w.start + WINDOW_MS - now) / 1000)))
  const reset = `${retryAfter}s`
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
  return { ok, retryAfter: ok ? 0 : retryAfter, headers }
}

/**
 * Requests and tokens per minute per key, in this process's memory: fixed one-minute windows opened by a key's first
 * call. Requests count on admission; tokens are checked against the call's estimate on admission and charged with
 * the real count after the answer, so the remaining tokens may go negative (as 0G brokers allow).
 */
export class RateLimiter implements RateCounter {
  readonly #windows = new Map<string, Window>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  admit(keyId: string, limits: RateLimits, tokens: number): RateDecision {
    const w = this.#window(keyId)
    const ok = fits(w, limits, tokens)
    if (ok) w.requests++
    return decision(ok, w, limits, this.#now())
  }

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
}
