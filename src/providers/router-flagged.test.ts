import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import type { CatalogEntry, ProviderCatalog } from './catalog.ts'
import { Router } from './router.ts'

const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address

const entry = (n: number, inputPrice: bigint) =>
  ({
    provider: address(n),
    models: ['m'],
    inputPrice,
    outputPrice: 0n,
    verifiability: 'TeeML',
  }) as unknown as CatalogEntry

function routerOf(list: CatalogEntry[]) {
  const byModel = new Map<string, readonly CatalogEntry[]>()
  const catalog = {
    candidates: (model: string) => {
      if (!byModel.has(model)) byModel.set(model, list)
      return byModel.get(model)!
    },
  } as unknown as ProviderCatalog
  return new Router({ catalog })
}

const order = (list: readonly CatalogEntry[]) => list.map((e) => Number.parseInt(e.provider.slice(2), 16))

describe('Router: providers flagged by a policy outside it (the escrow)', () => {
  it('are no candidates while flagged, whatever their rank, and come back when unflagged', () => {
    const router = routerOf([entry(1, 1n), entry(2, 2n), entry(3, 3n)])
    expect(order(router.candidates('m'))).toEqual([1, 2, 3])
    router.setFlagged(address(1), true)
    expect(router.isFlagged(address(1))).toBe(true)
    expect(order(router.candidates('m'))).toEqual([2, 3])
    // Health keeps its own account: flagging is not a failure.
    expect(router.health(address(1))).toMatchObject({ failures: 0, state: 'closed' })
    router.setFlagged(address(1), false)
    expect(order(router.candidates('m'))).toEqual([1, 2, 3])
  })

  it('leave a model without candidates when they were its only provider (unlike an open circuit)', () => {
    const router = routerOf([entry(7, 1n)])
    router.setFlagged(address(7), true)
    expect(router.candidates('m')).toEqual([])
  })
})
