import type { Address } from 'viem'
import { providerLevel, VERIFICATION_LEVELS } from '../attestation/levels.ts'
import type { CatalogEntry } from './catalog.ts'

/** What a request may ask of the ranking: compatible with 0G Router's `X-0G-Provider-*` headers (docs/routing.md). */
export type ProviderSort = 'price' | 'latency' | 'throughput'

export type RoutingControls = {
  /** Pinned: this provider only, or first with the others after it when fallbacks are allowed. */
  provider?: Address
  sort?: ProviderSort
  /** Without fallbacks a call goes to one provider: the pinned one, else the best. */
  allowFallbacks: boolean
  /** Price ceilings in neuron per token (unit): providers above either are left out. */
  maxPricePrompt?: bigint
  maxPriceCompletion?: bigint
}

/** One candidate as the ranking sees it. */
export type Scored = {
  entry: CatalogEntry
  /** 0: routed; 1: no escrow headroom left; 2: circuit open. Always the first key. */
  bucket: number
  /** Index in VERIFICATION_LEVELS of what the chain says it reaches (L1 for an acknowledged TEE signer). */
  level: number
  price: bigint
  ttfbMs: number | undefined
  throughput: number | undefined
  /** The default order's figure, lower is better (see score()). */
  score: number
}

export type CandidateView = {
  open: boolean
  /** The escrow's headroom with the provider, when known: zero or less ranks it lower. */
  headroom: bigint | undefined
  errorRate: number
  ttfbMs: number | undefined
  throughput: number | undefined
}

/**
 * Scores a model's candidates. Every order first puts the providers that can be called now (circuit not open,
 * escrow headroom left or unknown) before those with no headroom, and open circuits last. The default order then
 * prefers a higher verification level, then the lowest score:
 *
 *   score = price ratio × √(first-byte ratio × throughput ratio) × 1 / (1 − error rate)
 *
 * where each ratio is against the best among the candidates (1 for the best; a provider not measured yet counts as
 * the best, so new providers get traffic to be measured), and the error rate is capped at 0.9. Twice the price,
 * or twice the first byte and half the throughput, or a 50% error rate each double the score.
 */
export function score(entries: readonly CatalogEntry[], view: (entry: CatalogEntry) => CandidateView): Scored[] {
  const views = entries.map(view)
  const prices = entries.map((e) => e.inputPrice + e.outputPrice)
  let minPrice = prices[0] ?? 0n
  for (const p of prices) if (p < minPrice) minPrice = p
  const ttfbs = views.map((v) => v.ttfbMs).filter((v) => v !== undefined)
  const minTtfb = Math.max(Math.min(...ttfbs), 1)
  const maxThroughput = Math.max(...views.map((v) => v.throughput ?? 0))
  return entries.map((entry, i) => {
    const v = views[i]!
    const price = prices[i]!
    // +1: a free provider (the devnet) still compares.
    const priceRatio = Number(price + 1n) / Number(minPrice + 1n)
    const latencyRatio = v.ttfbMs === undefined ? 1 : Math.max(v.ttfbMs, 1) / minTtfb
    const throughputRatio = v.throughput ? maxThroughput / v.throughput : 1
    const errors = 1 / (1 - Math.min(v.errorRate, 0.9))
    return {
      entry,
      bucket: v.open ? 2 : v.headroom !== undefined && v.headroom <= 0n ? 1 : 0,
      level: VERIFICATION_LEVELS.indexOf(providerLevel(entry, undefined)),
      price,
      ttfbMs: v.ttfbMs,
      throughput: v.throughput,
      score: priceRatio * Math.sqrt(latencyRatio * throughputRatio) * errors,
    }
  })
}

const cmp = (a: bigint | number, b: bigint | number) => (a < b ? -1 : a > b ? 1 : 0)
const byDefault = (a: Scored, b: Scored) => b.level - a.level || a.score - b.score

/**
 * The candidates in order: by `sort` (price: the lowest per-token sum; latency: the shortest first byte;
 * throughput: the highest rate; not measured yet: last), else by level and score (see score()). Ties fall back
 * to the default order.
 */
export function order(scored: readonly Scored[], sort: ProviderSort | undefined): Scored[] {
  const key: (a: Scored, b: Scored) => number =
    sort === 'price'
      ? (a, b) => cmp(a.price, b.price)
      : sort === 'latency'
        ? (a, b) => cmp(a.ttfbMs ?? Number.POSITIVE_INFINITY, b.ttfbMs ?? Number.POSITIVE_INFINITY)
        : sort === 'throughput'
          ? (a, b) => cmp(b.throughput ?? -1, a.throughput ?? -1)
          : () => 0
  return [...scored].sort((a, b) => a.bucket - b.bucket || key(a, b) || byDefault(a, b))
}

/**
 * How many of an ordered list's first candidates are as good as the first, within `tolerance` (0.1: 10%) on the
 * figure the order ends on: calls spread over them. Price ties must be exact; unmeasured latency or throughput ties
 * with unmeasured.
 */
export function equals(ordered: readonly Scored[], sort: ProviderSort | undefined, tolerance: number): number {
  const first = ordered[0]
  if (!first) return 0
  const within = (a: number | undefined, best: number | undefined, higherIsBetter: boolean) => {
    if (a === undefined || best === undefined) return a === best
    return higherIsBetter ? a * (1 + tolerance) >= best : a <= best * (1 + tolerance)
  }
  const same = (s: Scored) =>
    s.bucket === first.bucket &&
    (sort === 'latency'
      ? within(s.ttfbMs, first.ttfbMs, false)
      : sort === 'throughput'
        ? within(s.throughput, first.throughput, true)
        : (sort !== 'price' || s.price === first.price) &&
          s.level === first.level &&
          s.score <= first.score * (1 + tolerance))
  let n = 1
  while (n < ordered.length && same(ordered[n]!)) n++
  return n
}

/** `list` with its `i`-th entry moved to the front, the others in their order. */
export function withFirst<T>(list: readonly T[], i: number): readonly T[] {
  if (i === 0) return list
  return [list[i]!, ...list.slice(0, i), ...list.slice(i + 1)]
}

/**
 * The candidates for a call with controls: those within the price ceilings, in the order asked, the first drawn
 * among the equals (`draw(n)`: an index below n), then the pin and fallbacks. A pinned provider whose circuit is
 * open goes after the others when fallbacks are allowed: a pin is a preference, not a reason to wait on a provider
 * known down. A pin the model's providers do not include leaves the others, or none without fallbacks.
 */
export function arrange(
  scored: readonly Scored[],
  controls: RoutingControls,
  tolerance: number,
  draw: (n: number) => number,
): readonly CatalogEntry[] {
  const { maxPricePrompt: prompt, maxPriceCompletion: completion } = controls
  const allowed = scored.filter(
    (s) =>
      (prompt === undefined || s.entry.inputPrice <= prompt) &&
      (completion === undefined || s.entry.outputPrice <= completion),
  )
  const ordered = order(allowed, controls.sort)
  const spread = withFirst(ordered, draw(equals(ordered, controls.sort, tolerance)))
  if (controls.provider === undefined)
    return (controls.allowFallbacks ? spread : spread.slice(0, 1)).map((s) => s.entry)
  const pin = controls.provider.toLowerCase()
  const pinned = spread.find((s) => s.entry.provider.toLowerCase() === pin)
  if (!controls.allowFallbacks) return pinned ? [pinned.entry] : []
  const others = spread.filter((s) => s !== pinned).map((s) => s.entry)
  if (!pinned) return others
  return pinned.bucket === 2 ? [...others, pinned.entry] : [pinned.entry, ...others]
}
