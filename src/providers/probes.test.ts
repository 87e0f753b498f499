import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import type { CatalogEntry, ProviderCatalog } from './catalog.ts'
import { modelsProbe, Prober } from './probes.ts'
import { Router } from './router.ts'

const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address
const entry = (n: number, url = `http://127.0.0.1:${9000 + n}`) =>
  ({
    provider: address(n),
    url,
    models: ['m'],
    inputPrice: 1n,
    outputPrice: 1n,
    verifiability: 'TeeML',
  }) as unknown as CatalogEntry

function setup(list: CatalogEntry[], threshold = 1) {
  const clock = { now: 1_000_000 }
  const catalog = { candidates: () => list } as unknown as ProviderCatalog
  const router = new Router({ catalog, threshold, cooldownMs: 100, now: () => clock.now })
  const up = new Map(list.map((e) => [e.provider, true]))
  const probed: number[] = []
  const prober = new Prober({
    router,
    entries: () => list,
    intervalMs: 10,
    idleMs: 1_000,
    now: () => clock.now,
    probe: async (e) => {
      probed.push(Number.parseInt(e.provider.slice(2), 16))
      return up.get(e.provider) ?? false
    },
  })
  return { router, prober, clock, up, probed }
}

describe('Prober', () => {
  it('probes providers never seen, then those idle for idleMs and those whose last call failed', async () => {
    const { router, prober, clock, probed } = setup([entry(1), entry(2), entry(3), entry(4)], 3)
    await prober.round()
    expect(probed).toEqual([1, 2, 3, 4])
    probed.length = 0
    clock.now += 500
    router.reportSuccess(address(1), 10)
    router.reportSuccess(address(4), 10)
    router.reportFailure(address(4))
    await prober.round()
    expect(probed).toEqual([4])
    clock.now += 500
    // 2 and 3 were last heard of (probed) 1000 ms ago; 1 answered a call since, 4 a probe.
    await prober.round()
    expect(probed).toEqual([4, 2, 3])
  })

  it('leaves an open circuit alone while it cools down, then probes it: closed again when it answers', async () => {
    const { router, prober, clock, up, probed } = setup([entry(1)])
    router.reportFailure(address(1))
    expect(router.health(address(1)).state).toBe('open')
    await prober.round()
    expect(probed).toEqual([])
    clock.now += 100
    up.set(address(1), false)
    await prober.round()
    expect(probed).toEqual([1])
    expect(router.health(address(1))).toMatchObject({ state: 'open', nextProbeAt: clock.now + 100 })
    clock.now += 100
    up.set(address(1), true)
    await prober.round()
    expect(probed).toEqual([1, 1])
    expect(router.health(address(1))).toMatchObject({ state: 'closed', failures: 0 })
  })

  it('does not probe a half-open provider whose probe a call already carries', async () => {
    const { router, prober, clock, probed } = setup([entry(1), entry(2)])
    router.reportSuccess(address(2), 10)
    router.reportFailure(address(1))
    clock.now += 100
    // The ranking hands the probe to this call.
    router.candidates('m')
    await prober.round()
    expect(probed).toEqual([])
  })

  it('runs rounds on its interval until stopped, and counts a probe that throws as a failure', async () => {
    const clock = { now: 0 }
    const list = [entry(1)]
    const router = new Router({ catalog: { candidates: () => list } as unknown as ProviderCatalog, threshold: 1 })
    let rounds = 0
    const prober = new Prober({
      router,
      entries: () => list,
      intervalMs: 5,
      idleMs: 0,
      now: () => clock.now,
      probe: async () => {
        rounds++
        throw new Error('unreachable')
      },
    })
    prober.start()
    await new Promise((r) => setTimeout(r, 40))
    await prober.stop()
    const seen = rounds
    expect(seen).toBeGreaterThan(0)
    expect(router.health(address(1)).state).toBe('open')
    await new Promise((r) => setTimeout(r, 20))
    expect(rounds).toBe(seen)
  })
})

describe('modelsProbe', () => {
  it("is true when the provider's /v1/models answers a model list, false otherwise", async () => {
    const server = createServer((req, res) => {
      if (req.url === '/ok/v1/models') res.end(JSON.stringify({ object: 'list', data: [{ id: 'm' }] }))
      else res.writeHead(500).end()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const probe = modelsProbe({ timeoutMs: 1_000 })
      expect(await probe(entry(1, `${base}/ok`))).toBe(true)
      expect(await probe(entry(1, `${base}/down`))).toBe(false)
    } finally {
      server.close()
    }
  })
})
