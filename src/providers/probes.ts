import type { Dispatcher } from 'undici'
import type { CatalogEntry } from './catalog.ts'
import { fetchProviderModels } from './provider-models.ts'
import type { Router } from './router.ts'

/** Whether a provider answers: true when it does. */
export type Probe = (entry: CatalogEntry) => Promise<boolean>

export type ProberOptions = {
  router: Pick<Router, 'health' | 'claimProbe' | 'reportProbe'>
  /** The providers to watch (the catalog's entries, read at each round). */
  entries: () => readonly CatalogEntry[]
  probe: Probe
  /** Time between rounds. Default 30 s. */
  intervalMs?: number
  /** A provider with no call or probe for this long is probed. Default 5 min. */
  idleMs?: number
  now?: () => number
}

/**
 * A provider's public model list (`GET {url}/v1/models`, no auth: 0g-protocol.md §2) answered in time: the probe
 * the gateway uses, through its guarded dispatcher (no private addresses, no redirects).
 */
export function modelsProbe(options: { dispatcher?: Dispatcher; timeoutMs?: number } = {}): Probe {
  return (entry) =>
    fetchProviderModels(new URL(entry.url), options).then(
      () => true,
      () => false,
    )
}

/**
 * Active probes: every `intervalMs`, each provider whose circuit is half-open (its cool-down over: a probe may close
 * it without a user's call paying for the test), that failed its last call, or that was idle for `idleMs`, is
 * probed, and the outcome moves its circuit (Router.reportProbe). Open circuits still cooling down are left alone.
 */
export class Prober {
  readonly #options: Required<Omit<ProberOptions, 'now'>> & { now: () => number }
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined

  constructor(options: ProberOptions) {
    this.#options = { intervalMs: 30_000, idleMs: 300_000, now: Date.now, ...options }
  }

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.round(), this.#options.intervalMs)
    this.#timer.unref()
  }

  /** Stops the rounds, and waits for the one under way. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#round
  }

  /** One round now (a round still under way is not doubled: its promise is returned). */
  round(): Promise<void> {
    this.#round ??= this.#probeAll().finally(() => {
      this.#round = undefined
    })
    return this.#round
  }

  async #probeAll(): Promise<void> {
    const { router, probe, idleMs, now } = this.#options
    const due = this.#options.entries().filter((entry) => {
      const h = router.health(entry.provider)
      if (h.state === 'half-open') return router.claimProbe(entry.provider)
      if (h.state === 'open') return false
      return h.failures > 0 || h.lastReportAt === undefined || now() - h.lastReportAt >= idleMs
    })
    await Promise.all(
      due.map(async (entry) => {
        const ok = await probe(entry).catch(() => false)
        router.reportProbe(entry.provider, ok)
      }),
    )
  }
}
