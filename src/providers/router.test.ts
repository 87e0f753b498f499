import { setTimeout as sleep } from 'node:timers/promises'
import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import type { CatalogEntry, ProviderCatalog } from './catalog.ts'
import { Router } from './router.ts'

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

const order = (list: readonly CatalogEntry[]) => list.map((e) => Number.parseInt(e.provider.slice(2), 16))

describe('Router', () => {
  it('ranks verifiable providers first, then the cheapest, then the fastest seen', () => {
    const { catalog } = catalogOf([entry(1, { verifiability: '' }), entry(2, { inputPrice: 30n }), entry(3), entry(4)])
    const router = new Router({ catalog })
    expect(order(router.candidates('m'))).toEqual([3, 4, 2, 1])
    router.reportSuccess(address(4), 50)
    router.reportSuccess(address(3), 90)
    expect(order(router.candidates('m'))).toEqual([4, 3, 2, 1])
    // Weighted: one fast call does not undo a history at once.
    router.reportSuccess(address(3), 10)
    expect(order(router.candidates('m'))).toEqual([4, 3, 2, 1])
    // 90 → 74 → 61.2 → 51.0 → 42.8 ms: past provider 4's 50 ms at the fourth.
    for (let i = 0; i < 2; i++) router.reportSuccess(address(3), 10)
    expect(order(router.candidates('m'))).toEqual([4, 3, 2, 1])
    router.reportSuccess(address(3), 10)
    expect(order(router.candidates('m'))).toEqual([3, 4, 2, 1])
  })

  it('answers the same ranking until a provider reports, without ranking again', () => {
    const { catalog } = catalogOf([entry(1), entry(2)])
    const router = new Router({ catalog })
    const first = router.candidates('m')
    expect(router.candidates('m')).toBe(first)
    router.reportSuccess(address(2), 5)
    const second = router.candidates('m')
    expect(order(second)).toEqual([2, 1])
    expect(router.candidates('m')).toBe(second)
  })

  it('puts a provider whose circuit opened last, and back in its place once it reopens', async () => {
    const { catalog } = catalogOf([entry(1), entry(2)])
    const router = new Router({ catalog, threshold: 2, cooldownMs: 60 })
    router.reportSuccess(address(1), 5)
    router.reportSuccess(address(2), 50)
    expect(order(router.candidates('m'))).toEqual([1, 2])
    router.reportFailure(address(1))
    expect(order(router.candidates('m'))).toEqual([1, 2])
    router.reportFailure(address(1))
    expect(order(router.candidates('m'))).toEqual([2, 1])
    // No report in between: the ranking itself knows when the circuit closes again.
    await sleep(80)
    expect(order(router.candidates('m'))).toEqual([1, 2])
  })

  it('ranks a reloaded catalog anew, and passes a lone provider through', () => {
    const { catalog, refresh } = catalogOf([entry(1), entry(2, { inputPrice: 1n })])
    const router = new Router({ catalog })
    expect(order(router.candidates('m'))).toEqual([2, 1])
    refresh([entry(1), entry(2, { inputPrice: 100n }), entry(3, { inputPrice: 1n })])
    expect(order(router.candidates('m'))).toEqual([3, 1, 2])
    refresh([entry(5)])
    expect(order(router.candidates('m'))).toEqual([5])
    expect(router.candidates('other')).toEqual([])
  })
})
