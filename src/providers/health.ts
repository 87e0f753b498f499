/** A provider's circuit: closed (routed), open (set aside for a cool-down), half-open (one probe may go). */
export type BreakerState = 'closed' | 'open' | 'half-open'

/** What the gateway has measured of one provider, and its circuit (GET /admin/providers). */
export type ProviderHealth = {
  state: BreakerState
  /** Failures in a row. */
  failures: number
  /** An exponentially weighted average of failures (1) and successes (0) of real calls: 0..1. */
  errorRate: number
  /** Exponentially weighted averages of the time to the first byte, and of the transfer rate after it (bytes/s). */
  ttfbMs: number | undefined
  throughput: number | undefined
  /** When the circuit opened (ms since the epoch), and when a probe may go; set while open or half-open. */
  openedAt?: number
  nextProbeAt?: number
  /** The last report of a call or a probe (ms since the epoch): the prober visits providers idle since long ago. */
  lastReportAt?: number
}

export type HealthOptions = {
  /** Failures in a row that open the circuit. Default 3. */
  threshold?: number
  /** An error rate (0..1) that opens the circuit, once `minCalls` calls were seen since it last closed. Default 0.5. */
  errorRateThreshold?: number
  minCalls?: number
  /** How long an open circuit stays open before a probe may go. Default 30 s. */
  cooldownMs?: number
  /** How long one half-open probe is waited for before another may go. Default 30 s. */
  probeTimeoutMs?: number
  now?: () => number
}

/** Weight of the newest sample in the latency and throughput averages, and in the error rate (a window of ~10). */
const SPEED_ALPHA = 0.2
const ERROR_ALPHA = 0.1

type Record = {
  failures: number
  errorRate: number
  /** Calls seen since the circuit last closed: the error rate opens it only over enough of them. */
  calls: number
  ttfbMs: number | undefined
  throughput: number | undefined
  openedAt: number | undefined
  nextProbeAt: number
  /** A half-open probe is under way until then. */
  probeUntil: number
  lastReportAt: number | undefined
}

const ewma = (avg: number | undefined, sample: number, alpha: number) =>
  avg === undefined ? sample : avg * (1 - alpha) + sample * alpha

/**
 * Per provider (by lowercase address): the measured speed and error rate, and a circuit breaker. closed → open
 * after `threshold` failures in a row or an error rate over `errorRateThreshold`; open → half-open once
 * `cooldownMs` passed; half-open → closed on the next success (a call or a probe), open again on a failure. A
 * half-open circuit lets one probe through at a time (claim()).
 */
export class HealthTracker {
  readonly #records = new Map<string, Record>()
  readonly #threshold: number
  readonly #errorRateThreshold: number
  readonly #minCalls: number
  readonly #cooldownMs: number
  readonly #probeTimeoutMs: number
  readonly now: () => number

  constructor(options: HealthOptions = {}) {
    this.#threshold = options.threshold ?? 3
    this.#errorRateThreshold = options.errorRateThreshold ?? 0.5
    this.#minCalls = options.minCalls ?? 10
    this.#cooldownMs = options.cooldownMs ?? 30_000
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 30_000
    this.now = options.now ?? Date.now
  }

  #record(key: string): Record {
    let r = this.#records.get(key)
    if (!r) {
      r = {
        failures: 0,
        errorRate: 0,
        calls: 0,
        ttfbMs: undefined,
        throughput: undefined,
        openedAt: undefined,
        nextProbeAt: 0,
        probeUntil: 0,
        lastReportAt: undefined,
      }
      this.#records.set(key, r)
    }
    return r
  }

  /** The circuit now; `probing` when half-open with its one probe under way. */
  state(key: string, now = this.now()): BreakerState | 'probing' {
    const r = this.#records.get(key)
    if (r?.openedAt === undefined) return 'closed'
    if (now < r.nextProbeAt) return 'open'
    return now < r.probeUntil ? 'probing' : 'half-open'
  }

  /** When the state of `key`'s circuit changes by itself (a cool-down or a probe's wait ends), if it will. */
  changesAt(key: string, now = this.now()): number {
    const r = this.#records.get(key)
    if (r?.openedAt === undefined) return Number.POSITIVE_INFINITY
    if (now < r.nextProbeAt) return r.nextProbeAt
    return now < r.probeUntil ? r.probeUntil : Number.POSITIVE_INFINITY
  }

  /** Takes the one probe of a half-open circuit: true when the caller may send it. */
  claim(key: string, now = this.now()): boolean {
    if (this.state(key, now) !== 'half-open') return false
    this.#record(key).probeUntil = now + this.#probeTimeoutMs
    return true
  }

  /** A call succeeded: `firstByteMs` after it was sent, then `transfer` (bytes in ms after the first byte). */
  success(key: string, firstByteMs: number, transfer?: { bytes: number; ms: number }): void {
    const r = this.#record(key)
    r.ttfbMs = ewma(r.ttfbMs, firstByteMs, SPEED_ALPHA)
    // A transfer too short to time says nothing of the rate.
    if (transfer && transfer.bytes > 0 && transfer.ms >= 1)
      r.throughput = ewma(r.throughput, (transfer.bytes * 1000) / transfer.ms, SPEED_ALPHA)
    r.errorRate = ewma(r.errorRate, 0, ERROR_ALPHA)
    this.#succeeded(r)
    r.calls++
  }

  /** A failed call; with `retryAfterMs` (the provider's Retry-After) the circuit stays open at least that long. */
  failure(key: string, retryAfterMs?: number): void {
    const r = this.#record(key)
    r.errorRate = ewma(r.errorRate, 1, ERROR_ALPHA)
    r.calls++
    this.#failed(r)
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      const now = this.now()
      r.openedAt ??= now
      r.nextProbeAt = Math.max(r.nextProbeAt, now + retryAfterMs)
      r.probeUntil = 0
    }
  }

  /** A probe's outcome: it moves the circuit like a call, but it is no sample of the speed or the error rate. */
  probe(key: string, ok: boolean): void {
    const r = this.#record(key)
    if (ok) this.#succeeded(r)
    else this.#failed(r)
  }

  #succeeded(r: Record): void {
    r.failures = 0
    r.lastReportAt = this.now()
    if (r.openedAt !== undefined) {
      r.openedAt = undefined
      r.probeUntil = 0
      r.calls = 0
    }
  }

  #failed(r: Record): void {
    const now = this.now()
    r.failures++
    r.lastReportAt = now
    if (r.openedAt !== undefined) {
      // Calls that were under way when it opened do not keep it open longer; a failed probe does.
      if (now >= r.nextProbeAt) this.#open(r, now)
      return
    }
    const rateExceeded = r.calls >= this.#minCalls && r.errorRate >= this.#errorRateThreshold
    if (r.failures >= this.#threshold || rateExceeded) this.#open(r, now)
  }

  #open(r: Record, now: number): void {
    r.openedAt = now
    r.nextProbeAt = now + this.#cooldownMs
    r.probeUntil = 0
  }

  snapshot(key: string): ProviderHealth {
    const r = this.#records.get(key)
    const state = this.state(key)
    return {
      state: state === 'probing' ? 'half-open' : state,
      failures: r?.failures ?? 0,
      errorRate: r?.errorRate ?? 0,
      ttfbMs: r?.ttfbMs,
      throughput: r?.throughput,
      ...(r?.openedAt !== undefined && { openedAt: r.openedAt, nextProbeAt: r.nextProbeAt }),
      ...(r?.lastReportAt !== undefined && { lastReportAt: r.lastReportAt }),
    }
  }
}
