import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import type { CatalogEntry, ProviderCatalog } from './catalog.ts'
import type { RoutingControls } from './ranking.ts'
import { Router, type RouterOptions } from './router.ts'

const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address

function entry(n: number, over: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    provider: address(n),
    serviceType: 'chatbot',
    url: `http://127.0.0.1:${9000 + n}`,
    model: 'm',
    models: ['m'],
    inputPrice: 10n,
    outputPrice: 10n,
    verifiability: 'TeeML',
    teeSignerAddress: address(100 + n),
    teeSignerAcknowledged: true,
    additionalInfo: {} as CatalogEntry['additionalInfo'],
    updatedAt: 0n,
    healthy: true,
    ...over,
  }
}

/** A catalog of a fixed list: the same list object per model until a reload, as the real one answers. */
function catalogOf(list: CatalogEntry[]) {
  let current = list
  let byModel = new Map<string, readonly CatalogEntry[]>()
  const catalog = {
    candidates(model: string) {
      let found = byModel.get(model)
      if (!found) {
        found = current.filter((e) => e.models.includes(model))
        byModel.set(model, found)
      }
      return found
    },
  }
  return {
    catalog: catalog as unknown as ProviderCatalog,
    refresh(next: CatalogEntry[]) {
      current = next
      byModel = new Map()
    },
  }
}

/** A router over `list` with a clock the test moves, and draws the test sets (0 by default: the first equal). */
function routerOf(list: CatalogEntry[], options: Partial<RouterOptions> = {}) {
  const clock = { now: 1_000_000, draw: 0 }
  const router = new Router({
    catalog: catalogOf(list).catalog,
    now: () => clock.now,
    random: () => clock.draw,
    ...options,
  })
  return { router, clock }
}

const order = (list: readonly CatalogEntry[]) => list.map((e) => Number.parseInt(e.provider.slice(2), 16))
const controls = (c: Partial<RoutingControls>): RoutingControls => ({ allowFallbacks: true, ...c })

describe('Router: the default order', () => {
  it('ranks verifiable providers first, then by price and measured speed', () => {
    const { router } = routerOf([entry(1, { verifiability: '' }), entry(2, { inputPrice: 30n }), entry(3), entry(4)])
    expect(order(router.candidates('m'))).toEqual([3, 4, 2, 1])
    router.reportSuccess(address(4), 50)
    router.reportSuccess(address(3), 90)
    // 90 ms against 50: √1.8 ≈ 1.34 times the score, past the 10% within which providers are equals.
    expect(order(router.candidates('m'))).toEqual([4, 3, 2, 1])
    // The first byte is an average weighted to recent calls (0.2 per call): 90 → 74 → 61.2 → 51.0 → 42.8 ms.
    router.reportSuccess(address(3), 10)
    expect(order(router.candidates('m'))).toEqual([4, 3, 2, 1])
    expect(router.health(address(3)).ttfbMs).toBeCloseTo(74)
    for (let i = 0; i < 3; i++) router.reportSuccess(address(3), 10)
    expect(router.health(address(3)).ttfbMs).toBeCloseTo(42.8, 1)
    // Now within 10% of each other: equals, the first drawn among them.
    expect(order(router.candidates('m'))).toEqual([3, 4, 2, 1])
  })

  it('weighs price against speed: twice the price is worth a first byte four times as fast', () => {
    const { router } = routerOf([entry(1, { inputPrice: 20n, outputPrice: 20n }), entry(2)])
    router.reportSuccess(address(1), 100)
    router.reportSuccess(address(2), 500)
    expect(order(router.candidates('m'))).toEqual([1, 2])
    router.reportSuccess(address(2), 100)
    router.reportSuccess(address(2), 100)
    expect(order(router.candidates('m'))).toEqual([2, 1])
  })

  it('ranks a provider with a high error rate lower, and one with no escrow headroom after those with some', () => {
    const headroom = new Map<string, bigint>([[address(1), 0n]])
    const { router, clock } = routerOf([entry(1, { inputPrice: 1n }), entry(2), entry(3, { inputPrice: 12n })], {
      headroom: (p) => headroom.get(p),
      headroomTtlMs: 100,
    })
    expect(order(router.candidates('m'))).toEqual([2, 3, 1])
    // The headroom is asked again once the ranking is older than headroomTtlMs.
    headroom.set(address(1), 5n)
    expect(order(router.candidates('m'))).toEqual([2, 3, 1])
    clock.now += 100
    expect(order(router.candidates('m'))).toEqual([1, 2, 3])
    // One failure in two calls: a 10% error rate, a bit more than 10% on the score: behind its equal.
    router.reportFailure(address(2))
    router.reportSuccess(address(2), 10)
    router.reportSuccess(address(3), 10)
    expect(router.health(address(2)).errorRate).toBeCloseTo(0.09)
    expect(order(router.candidates('m'))).toEqual([1, 3, 2])
  })

  it('spreads calls over equal candidates, by the random draw', () => {
    const { router, clock } = routerOf([entry(1), entry(2), entry(3), entry(4, { inputPrice: 100n })])
    const firsts = [0, 0.34, 0.67, 0.99].map((draw) => {
      clock.draw = draw
      return order(router.candidates('m'))
    })
    expect(firsts).toEqual([
      [1, 2, 3, 4],
      [2, 1, 3, 4],
      [3, 1, 2, 4],
      [3, 1, 2, 4],
    ])
  })

  it('answers the same lists until a provider reports, without ranking again', () => {
    const { router } = routerOf([entry(1), entry(2)])
    const first = router.candidates('m')
    expect(router.candidates('m')).toBe(first)
    router.reportSuccess(address(2), 5)
    router.reportSuccess(address(1), 50)
    const second = router.candidates('m')
    expect(order(second)).toEqual([2, 1])
    expect(router.candidates('m')).toBe(second)
  })

  it('ranks a reloaded catalog anew, passes a lone provider through, and keeps nothing for unknown models', () => {
    const { catalog, refresh } = catalogOf([entry(1), entry(2, { inputPrice: 1n })])
    const router = new Router({ catalog, random: () => 0 })
    expect(order(router.candidates('m'))).toEqual([2, 1])
    refresh([entry(1), entry(2, { inputPrice: 100n }), entry(3, { inputPrice: 1n })])
    expect(order(router.candidates('m'))).toEqual([3, 1, 2])
    refresh([entry(5)])
    expect(order(router.candidates('m'))).toEqual([5])
    expect(router.candidates('other')).toEqual([])
    expect(router.candidates('other', controls({ sort: 'price' }))).toEqual([])
  })
})

describe('Router: request controls', () => {
  const list = () => [
    entry(1, { inputPrice: 5n, outputPrice: 50n }),
    entry(2, { inputPrice: 20n, outputPrice: 20n }),
    entry(3, { inputPrice: 30n, outputPrice: 30n }),
  ]

  it('sorts by price, latency or throughput; not measured yet goes last', () => {
    const { router } = routerOf(list())
    router.reportSuccess(address(3), 20, { bytes: 10_000, ms: 100 })
    router.reportSuccess(address(2), 200, { bytes: 10_000, ms: 1_000 })
    expect(order(router.candidates('m', controls({ sort: 'price' })))).toEqual([2, 1, 3])
    expect(order(router.candidates('m', controls({ sort: 'latency' })))).toEqual([3, 2, 1])
    expect(order(router.candidates('m', controls({ sort: 'throughput' })))).toEqual([3, 2, 1])
    expect(router.health(address(3)).throughput).toBe(100_000)
    router.reportSuccess(address(1), 10, { bytes: 500_000, ms: 1_000 })
    expect(order(router.candidates('m', controls({ sort: 'latency' })))).toEqual([1, 3, 2])
    expect(order(router.candidates('m', controls({ sort: 'throughput' })))).toEqual([1, 3, 2])
  })

  it('spreads over providers within the tolerance of the sort key', () => {
    const { router, clock } = routerOf(list())
    router.reportSuccess(address(1), 100)
    router.reportSuccess(address(3), 105)
    router.reportSuccess(address(2), 200)
    clock.draw = 0.9
    expect(order(router.candidates('m', controls({ sort: 'latency' })))).toEqual([3, 1, 2])
    // Price ties must be exact.
    expect(order(router.candidates('m', controls({ sort: 'price' })))).toEqual([2, 1, 3])
  })

  it('pins a provider: first with fallbacks, alone without', () => {
    const { router } = routerOf(list())
    expect(order(router.candidates('m', controls({ provider: address(3) })))).toEqual([3, 2, 1])
    expect(order(router.candidates('m', controls({ provider: address(3), allowFallbacks: false })))).toEqual([3])
    // Another case of the address is the same provider.
    const upper = `0x${address(3).slice(2).toUpperCase()}` as Address
    expect(order(router.candidates('m', controls({ provider: upper, allowFallbacks: false })))).toEqual([3])
    // A provider that does not serve the model: the others, or none.
    expect(order(router.candidates('m', controls({ provider: address(9) })))).toEqual([2, 1, 3])
    expect(router.candidates('m', controls({ provider: address(9), allowFallbacks: false }))).toEqual([])
    // No pin and no fallbacks: the best one only.
    expect(order(router.candidates('m', controls({ allowFallbacks: false })))).toEqual([2])
  })

  it('puts a pinned provider whose circuit is open after the others', () => {
    const { router } = routerOf(list(), { threshold: 1 })
    router.reportFailure(address(3))
    expect(order(router.candidates('m', controls({ provider: address(3) })))).toEqual([2, 1, 3])
    expect(order(router.candidates('m', controls({ provider: address(3), allowFallbacks: false })))).toEqual([3])
  })

  it('leaves out providers above a price ceiling', () => {
    const { router } = routerOf(list())
    expect(order(router.candidates('m', controls({ maxPricePrompt: 20n })))).toEqual([2, 1])
    expect(order(router.candidates('m', controls({ maxPriceCompletion: 30n })))).toEqual([2, 3])
    expect(order(router.candidates('m', controls({ maxPricePrompt: 20n, maxPriceCompletion: 30n })))).toEqual([2])
    expect(router.candidates('m', controls({ maxPricePrompt: 1n }))).toEqual([])
    expect(router.candidates('m', controls({ maxPricePrompt: 1n, provider: address(1) }))).toEqual([])
  })
})

describe('Router: circuits', () => {
  it('puts a provider whose circuit opened last, lets one call probe it after the cool-down, closes on success', () => {
    const { router, clock } = routerOf([entry(1), entry(2, { inputPrice: 20n })], { threshold: 2, cooldownMs: 60 })
    expect(order(router.candidates('m'))).toEqual([1, 2])
    router.reportFailure(address(1))
    expect(order(router.candidates('m'))).toEqual([1, 2])
    router.reportFailure(address(1))
    expect(router.health(address(1))).toMatchObject({ state: 'open', failures: 2, openedAt: 1_000_000 })
    expect(order(router.candidates('m'))).toEqual([2, 1])
    // No report in between: the ranking itself knows when the cool-down ends. One call gets it back in its place...
    clock.now += 60
    expect(router.health(address(1)).state).toBe('half-open')
    expect(order(router.candidates('m'))).toEqual([1, 2])
    // ...the next ones do not, while that probe is under way.
    expect(order(router.candidates('m'))).toEqual([2, 1])
    expect(router.claimProbe(address(1))).toBe(false)
    router.reportSuccess(address(1), 5)
    expect(router.health(address(1))).toMatchObject({ state: 'closed', failures: 0 })
    expect(router.health(address(1)).openedAt).toBeUndefined()
    expect(order(router.candidates('m'))).toEqual([1, 2])
  })

  it('opens again when the probe fails, and lets another probe go when one is not answered in time', () => {
    const { router, clock } = routerOf([entry(1), entry(2, { inputPrice: 20n })], {
      threshold: 1,
      cooldownMs: 60,
      probeTimeoutMs: 30,
    })
    router.reportFailure(address(1))
    clock.now += 60
    expect(order(router.candidates('m'))).toEqual([1, 2])
    expect(order(router.candidates('m'))).toEqual([2, 1])
    router.reportFailure(address(1))
    expect(router.health(address(1))).toMatchObject({ state: 'open', nextProbeAt: clock.now + 60 })
    clock.now += 60
    expect(router.claimProbe(address(1))).toBe(true)
    expect(order(router.candidates('m'))).toEqual([2, 1])
    clock.now += 30
    expect(order(router.candidates('m'))).toEqual([1, 2])
  })

  it('opens on an error rate over enough calls, though failures never came three in a row', () => {
    const { router } = routerOf([entry(1)], { errorRateThreshold: 0.3, minCalls: 6 })
    // Two failures, a success, and again: the error rate passes 0.3 at the seventh call.
    for (const ok of [false, false, true, false, false, true]) {
      if (ok) router.reportSuccess(address(1), 10)
      else router.reportFailure(address(1))
    }
    expect(router.health(address(1)).state).toBe('closed')
    router.reportFailure(address(1))
    const h = router.health(address(1))
    expect(h.state).toBe('open')
    expect(h.failures).toBeLessThan(3)
    expect(h.errorRate).toBeGreaterThanOrEqual(0.3)
  })

  it('a failure reported while open (a call under way when it opened) does not extend the cool-down', () => {
    const { router, clock } = routerOf([entry(1)], { threshold: 1, cooldownMs: 60 })
    router.reportFailure(address(1))
    clock.now += 30
    router.reportFailure(address(1))
    expect(router.health(address(1)).nextProbeAt).toBe(1_000_060)
  })

  it('still offers a lone provider whose circuit is open', () => {
    const { router } = routerOf([entry(1)], { threshold: 1 })
    router.reportFailure(address(1))
    expect(order(router.candidates('m'))).toEqual([1])
  })

  it('moves circuits on probe outcomes without counting them as calls', () => {
    const { router, clock } = routerOf([entry(1)], { threshold: 2, cooldownMs: 10 })
    router.reportProbe(address(1), false)
    router.reportProbe(address(1), false)
    expect(router.health(address(1))).toMatchObject({ state: 'open', errorRate: 0 })
    clock.now += 10
    expect(router.claimProbe(address(1))).toBe(true)
    router.reportProbe(address(1), true)
    expect(router.health(address(1))).toMatchObject({ state: 'closed', failures: 0, lastReportAt: clock.now })
  })
})
