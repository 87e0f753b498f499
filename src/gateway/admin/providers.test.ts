import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import type { CatalogEntry, ProviderCatalog } from '../../providers/catalog.ts'
import { Router } from '../../providers/router.ts'
import { createGatewayApp } from '../app.ts'
import type { GatewayCore } from '../forward.ts'
import type { ApiKeyStore } from '../http/api-keys.ts'
import type { ProviderJson } from './providers.ts'

const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address
const entry = (n: number, over: Partial<CatalogEntry> = {}) =>
  ({
    provider: address(n),
    serviceType: 'chatbot',
    url: `https://p${n}.example`,
    model: 'm',
    models: ['m', 'm-mini'],
    inputPrice: 10n ** 12n,
    outputPrice: 2n * 10n ** 12n,
    verifiability: 'TeeML',
    teeSignerAddress: address(100 + n),
    teeSignerAcknowledged: true,
    healthy: true,
    ...over,
  }) as CatalogEntry

describe('GET /admin/providers', () => {
  it("lists the catalog's providers with the router's view of each, behind the admin key", async () => {
    const list = [entry(1), entry(2, { verifiability: '', healthy: false })]
    const catalog = { entries: () => list, candidates: () => list } as unknown as ProviderCatalog
    const clock = { now: 1_000_000 }
    const router = new Router({
      catalog,
      threshold: 1,
      now: () => clock.now,
      headroom: (p) => (p === address(1) ? 5n * 10n ** 18n : undefined),
    })
    router.reportSuccess(address(1), 120, { bytes: 4_000, ms: 500 })
    router.reportFailure(address(2))
    router.setFlagged(address(2), true)
    const core = {
      catalog,
      router,
      attestations: { known: (p: Address) => (p === address(1) ? { level: 'L2', recordHash: '0x' } : undefined) },
    } as unknown as GatewayCore
    const app = createGatewayApp({
      core,
      keys: { verify: () => undefined } as unknown as ApiKeyStore,
      adminKey: 'sk-admin',
      ready: () => true,
      log: () => {},
    })

    expect((await app.request('/admin/providers')).status).toBe(401)
    const res = await app.request('/admin/providers', { headers: { authorization: 'Bearer sk-admin' } })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { object: string; data: ProviderJson[] }
    expect(body.object).toBe('list')
    expect(body.data).toEqual([
      {
        provider: address(1),
        serviceType: 'chatbot',
        models: ['m', 'm-mini'],
        url: 'https://p1.example',
        inputPrice: '1000000000000',
        outputPrice: '2000000000000',
        verifiability: 'TeeML',
        level: 'L2',
        healthy: true,
        flagged: false,
        headroom: '5000000000000000000',
        breaker: {
          state: 'closed',
          failures: 0,
          errorRate: 0,
          ttfbMs: 120,
          throughput: 8_000,
          lastReportAt: 1_000_000,
        },
      },
      expect.objectContaining({
        provider: address(2),
        level: 'none',
        healthy: false,
        flagged: true,
        headroom: null,
        breaker: {
          state: 'open',
          failures: 1,
          errorRate: 0.1,
          openedAt: 1_000_000,
          nextProbeAt: 1_030_000,
          lastReportAt: 1_000_000,
        },
      }),
    ])
  })
})
