import type { Address } from 'viem'
import { VERIFIABLE } from '../attestation/levels.ts'
import type { CatalogEntry, ProviderCatalog } from './catalog.ts'

type Health = { failures: number; openUntil: number; latencyMs: number | undefined }

/**
 * Picks providers for a model: those whose circuit is closed first, then verifiable ones (TeeML: signed in a
 * TEE), then the cheapest, then the fastest seen. A provider that fails `threshold` times in a row is left out
 * for `cooldownMs`, unless no other provider serves the model.
 */
export class Router {
  readonly #catalog: ProviderCatalog
  readonly #health = new Map<string, Health>()
  /** Rankings by model: of which catalog list, and until when (the next circuit to reopen), if health stays. */
  readonly #ranked = new Map<string, { from: readonly CatalogEntry[]; list: readonly CatalogEntry[]; until: number }>()
  readonly #threshold: number
  readonly #cooldownMs: number
  /** Providers set aside by a policy outside the router (the escrow's: stopped for disputes), by lowercase address. */
  readonly #flagged = new Set<string>()

  constructor(params: { catalog: ProviderCatalog; threshold?: number; cooldownMs?: number }) {
    this.#catalog = params.catalog
    this.#threshold = params.threshold ?? 3
    this.#cooldownMs = params.cooldownMs ?? 30_000
  }

  candidates(model: string): readonly CatalogEntry[] {
    const list = this.#ranking(model)
    // Flagged providers are no candidates at all, not even a model's only one.
    return this.#flagged.size ? list.filter((e) => !this.#flagged.has(e.provider.toLowerCase())) : list
  }

  #ranking(model: string): readonly CatalogEntry[] {
    const entries = this.#catalog.candidates(model)
    // One provider for the model (the usual case): nothing to rank, and it is tried even with its circuit open.
    if (entries.length < 2) return entries
    const now = Date.now()
    const ranked = this.#ranked.get(model)
    if (ranked && ranked.from === entries && now < ranked.until) return ranked.list
    return this.#rank(model, entries, now)
  }

  /** Sets a provider aside (true) or lets it back (false): while flagged it is no candidate for any model. */
  setFlagged(provider: Address, flagged: boolean): void {
    if (flagged) this.#flagged.add(provider.toLowerCase())
    else this.#flagged.delete(provider.toLowerCase())
  }

  isFlagged(provider: Address): boolean {
    return this.#flagged.has(provider.toLowerCase())
  }

  reportSuccess(provider: Address, latencyMs: number): void {
    const h = this.#health.get(provider.toLowerCase())
    // An exponentially weighted latency: recent calls count most.
    const latency = h?.latencyMs === undefined ? latencyMs : h.latencyMs * 0.8 + latencyMs * 0.2
    this.#health.set(provider.toLowerCase(), { failures: 0, openUntil: 0, latencyMs: latency })
    this.#rerank(provider)
  }

  reportFailure(provider: Address): void {
    const key = provider.toLowerCase()
    const h = this.#health.get(key) ?? { failures: 0, openUntil: 0, latencyMs: undefined }
    const failures = h.failures + 1
    this.#health.set(key, {
      ...h,
      failures,
      openUntil: failures >= this.#threshold ? Date.now() + this.#cooldownMs : h.openUntil,
    })
    this.#rerank(provider)
  }

  /** Ranks a model's providers, and keeps the ranking until their health changes or a circuit reopens. */
  #rank(model: string, entries: readonly CatalogEntry[], now: number): readonly CatalogEntry[] {
    let until = Number.POSITIVE_INFINITY
    const scored = entries.map((entry) => {
      const h = this.#health.get(entry.provider.toLowerCase())
      const open = h !== undefined && h.openUntil > now
      if (open) until = Math.min(until, h.openUntil)
      return {
        entry,
        open: open ? 1 : 0,
        verifiable: VERIFIABLE.has(entry.verifiability) ? 0 : 1,
        price: entry.inputPrice + entry.outputPrice,
        latency: h?.latencyMs ?? Number.POSITIVE_INFINITY,
      }
    })
    scored.sort(
      (a, b) =>
        a.open - b.open ||
        a.verifiable - b.verifiable ||
        (a.price < b.price ? -1 : a.price > b.price ? 1 : 0) ||
        a.latency - b.latency,
    )
    const list = scored.map((s) => s.entry)
    this.#ranked.set(model, { from: entries, list, until })
    return list
  }

  /**
   * A provider's health changed: the rankings it is part of are redone now, after the call that reported it (off
   * the next call's way), not when the next call asks.
   */
  #rerank(provider: Address): void {
    const key = provider.toLowerCase()
    const now = Date.now()
    for (const [model, ranked] of this.#ranked) {
      if (!ranked.list.some((e) => e.provider.toLowerCase() === key)) continue
      // Against the catalog as it is now: a ranking of a reloaded list would only be thrown away by candidates().
      const entries = this.#catalog.candidates(model)
      if (entries.length < 2) this.#ranked.delete(model)
      else this.#rank(model, entries, now)
    }
  }

  /** Per provider: failures in a row and whether its circuit is open (for /v1/providers and metrics). */
  health(provider: Address): { failures: number; open: boolean; latencyMs: number | undefined } {
    const h = this.#health.get(provider.toLowerCase())
    return { failures: h?.failures ?? 0, open: (h?.openUntil ?? 0) > Date.now(), latencyMs: h?.latencyMs }
  }
}
