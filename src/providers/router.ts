import type { Address } from 'viem'
import type { CatalogEntry, ProviderCatalog } from './catalog.ts'
import { type HealthOptions, HealthTracker, type ProviderHealth } from './health.ts'
import { arrange, equals, order, type RoutingControls, type Scored, score, withFirst } from './ranking.ts'

export type RouterOptions = HealthOptions & {
  catalog: Pick<ProviderCatalog, 'candidates'>
  /**
   * The escrow's headroom with a provider (what the sub-account can still cover), when known: a provider with none
   * left ranks after those with some. Asked when a ranking is made, so a ranking is kept `headroomTtlMs` at most.
   */
  headroom?: (provider: Address) => bigint | undefined
  /** Default 1 s. */
  headroomTtlMs?: number
  /** Candidates whose figures are within this fraction of the best are equals, over which calls spread. Default 0.1. */
  tolerance?: number
  /** A number in [0, 1): which of the equals a call goes to first. Default Math.random. */
  random?: () => number
}

/** A model's ranking: of which catalog list, and until when it holds if no provider reports. */
type Ranking = {
  from: readonly CatalogEntry[]
  scored: readonly Scored[]
  /** The default order, once with each of the equal best first: a call takes one at random. */
  firsts: readonly (readonly CatalogEntry[])[]
  until: number
}

const NO_RANKING: Ranking = { from: [], scored: [], firsts: [[]], until: 0 }

/**
 * Picks providers for a model (docs/routing.md): ranked by circuit and escrow headroom, then verification level,
 * price, measured speed and error rate (ranking.ts), with calls spread over equal candidates; per request, the
 * controls of 0G Router's headers. A provider's circuit opens after failures (health.ts): it then ranks last, and
 * is still tried when no other provider answers.
 */
export class Router {
  readonly #catalog: Pick<ProviderCatalog, 'candidates'>
  readonly #health: HealthTracker
  readonly #rankings = new Map<string, Ranking>()
  readonly #headroom: ((provider: Address) => bigint | undefined) | undefined
  readonly #headroomTtlMs: number
  readonly #tolerance: number
  readonly #random: () => number
  /** Providers set aside by a policy outside the router (the escrow's: stopped for disputes), by lowercase address. */
  readonly #flagged = new Set<string>()

  constructor(options: RouterOptions) {
    this.#catalog = options.catalog
    this.#health = new HealthTracker(options)
    this.#headroom = options.headroom
    this.#headroomTtlMs = options.headroomTtlMs ?? 1_000
    this.#tolerance = options.tolerance ?? 0.1
    this.#random = options.random ?? Math.random
  }

  /**
   * A model's providers, best first, for one call. Without controls (the usual call) this is a list made when the
   * ranking was, so it costs a map lookup and a random draw. Flagged providers are no candidates at all.
   */
  candidates(model: string, controls?: RoutingControls): readonly CatalogEntry[] {
    const ranking = this.#ranking(model)
    if (controls) return arrange(ranking.scored, controls, this.#tolerance, this.#draw)
    const { firsts } = ranking
    return firsts.length === 1 ? firsts[0]! : firsts[this.#draw(firsts.length)]!
  }

  #draw = (n: number): number => (n < 2 ? 0 : Math.min(Math.floor(this.#random() * n), n - 1))

  #ranking(model: string): Ranking {
    const entries = this.#catalog.candidates(model)
    // A model nobody serves is not kept: clients name any model they like.
    if (!entries.length) return NO_RANKING
    const ranking = this.#rankings.get(model)
    if (ranking && ranking.from === entries && this.#health.now() < ranking.until) return ranking
    return this.#rank(model, entries, true)
  }

  /**
   * Ranks a model's providers. A half-open circuit ranks in its place for the call that made the ranking, which
   * then carries its probe (`probe`: a call is waiting for it); until that call reports, the kept ranking has it last.
   */
  #rank(model: string, entries: readonly CatalogEntry[], probe: boolean): Ranking {
    const now = this.#health.now()
    const listed = this.#flagged.size ? entries.filter((e) => !this.#flagged.has(e.provider.toLowerCase())) : entries
    let until = this.#headroom ? now + this.#headroomTtlMs : Number.POSITIVE_INFINITY
    const halfOpen: string[] = []
    const scored = score(listed, (entry) => {
      const key = entry.provider.toLowerCase()
      const state = this.#health.state(key, now)
      if (state === 'half-open') halfOpen.push(key)
      until = Math.min(until, this.#health.changesAt(key, now))
      const h = this.#health.snapshot(key)
      return {
        open: state === 'open' || state === 'probing',
        headroom: this.#headroom?.(entry.provider),
        errorRate: h.errorRate,
        ttfbMs: h.ttfbMs,
        throughput: h.throughput,
      }
    })
    const ordered = order(scored, undefined)
    const list = ordered.map((s) => s.entry)
    const n = equals(ordered, undefined, this.#tolerance)
    const ranking = {
      from: entries,
      scored,
      firsts: n ? Array.from({ length: n }, (_, i) => withFirst(list, i)) : [list],
      until,
    }
    if (!halfOpen.length) this.#rankings.set(model, ranking)
    else {
      if (probe) for (const key of halfOpen) this.#health.claim(key, now)
      // The next call ranks again: with the probed providers last, or (no call took the probe) in their place.
      this.#rankings.delete(model)
    }
    return ranking
  }

  /**
   * A provider's figures changed: the rankings it is part of are redone now, after the call that reported it (off
   * the next call's way), not when the next call asks.
   */
  #rerank(provider: Address): void {
    const key = provider.toLowerCase()
    for (const [model, ranking] of this.#rankings) {
      if (!ranking.from.some((e) => e.provider.toLowerCase() === key)) continue
      // Against the catalog as it is now: a ranking of a reloaded list would only be thrown away by candidates().
      const entries = this.#catalog.candidates(model)
      if (entries.length) this.#rank(model, entries, false)
      else this.#rankings.delete(model)
    }
  }

  /** Sets a provider aside (true) or lets it back (false): while flagged it is no candidate for any model. */
  setFlagged(provider: Address, flagged: boolean): void {
    if (flagged) this.#flagged.add(provider.toLowerCase())
    else this.#flagged.delete(provider.toLowerCase())
    this.#rerank(provider)
  }

  isFlagged(provider: Address): boolean {
    return this.#flagged.has(provider.toLowerCase())
  }

  /**
   * A call succeeded: its first byte came `firstByteMs` after it was sent, and (a stream) `transfer.bytes` came in
   * the `transfer.ms` after that. Closes its circuit.
   */
  reportSuccess(provider: Address, firstByteMs: number, transfer?: { bytes: number; ms: number }): void {
    this.#health.success(provider.toLowerCase(), firstByteMs, transfer)
    this.#rerank(provider)
  }

  /** A failed call; a provider that said when to come back (Retry-After) is not chosen before then. */
  reportFailure(provider: Address, retryAfterMs?: number): void {
    this.#health.failure(provider.toLowerCase(), retryAfterMs)
    this.#rerank(provider)
  }

  /** Takes the one probe a half-open circuit lets through (the prober): true when the caller may send it. */
  claimProbe(provider: Address): boolean {
    return this.#health.claim(provider.toLowerCase())
  }

  /** An active probe's outcome: moves the circuit, as a call would, without counting as a call. */
  reportProbe(provider: Address, ok: boolean): void {
    this.#health.probe(provider.toLowerCase(), ok)
    this.#rerank(provider)
  }

  /** A provider's circuit and figures (GET /admin/providers, /admin/funding, metrics). */
  health(provider: Address): ProviderHealth {
    return this.#health.snapshot(provider.toLowerCase())
  }

  /** The escrow's headroom with a provider as the ranking sees it, when known. */
  headroom(provider: Address): bigint | undefined {
    return this.#headroom?.(provider)
  }
}
