import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Address, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { acknowledgeTEESignerByOwner } from '../chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addOrUpdateService, type ServiceParams } from '../chain/actions/add-or-update-service.ts'
import { removeService } from '../chain/actions/remove-service.ts'
import { createZgClients, type ZgWalletClients } from '../chain/clients.ts'
import { customNetwork, type ZgNetwork } from '../chain/networks.ts'
import { type Anvil, anvilAccount, startAnvil } from '../devnet/anvil.ts'
import { deployZgContracts } from '../devnet/deploy.ts'
import { CatalogRefreshError, ProviderCatalog } from './catalog.ts'

/** The catalog's order: by address, case-insensitively. */
const byAddress = (...xs: Address[]) => xs.sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1))

/** A fresh anvil with the real 0G contracts; account 0 owns them. */
async function chain(opts: { accounts?: number } = {}) {
  const anvil = await startAnvil({ port: 0, ...opts })
  const boot = createZgClients({
    network: customNetwork({
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      contracts: { ledger: '0x', inference: '0x' },
    }),
    account: anvilAccount(0),
  })
  const contracts = await deployZgContracts({
    publicClient: boot.publicClient,
    walletClient: boot.walletClient,
    lockTime: 3600n,
  })
  const network: ZgNetwork = customNetwork({ chainId: anvil.chainId, rpcUrl: anvil.rpcUrl, contracts })
  const clientsOf = (i: number) => createZgClients({ network, account: anvilAccount(i) })
  return { anvil, network, owner: clientsOf(0), clientsOf }
}

function service(c: ZgWalletClients, over: Partial<ServiceParams> & { url: string }): ServiceParams {
  return {
    serviceType: 'chatbot',
    model: 'dev/chat-a',
    verifiability: 'TeeML',
    inputPrice: 1n,
    outputPrice: 2n,
    additionalInfo: '{}',
    teeSignerAddress: c.walletClient.account.address,
    ...over,
  }
}

/** Registers (with the 100 0G stake) and, unless told otherwise, has the owner acknowledge the signer. */
async function register(
  owner: ZgWalletClients,
  c: ZgWalletClients,
  over: Partial<ServiceParams> & { url: string },
  acknowledge = true,
): Promise<Address> {
  await addOrUpdateService(c, { service: service(c, over), stake: parseEther('100') })
  if (acknowledge) await acknowledgeTEESignerByOwner(owner, { provider: c.walletClient.account.address })
  return c.walletClient.account.address
}

describe('ProviderCatalog on the real contracts', () => {
  let anvil: Anvil
  let owner: ZgWalletClients
  let clientsOf: (i: number) => ZgWalletClients
  let network: ZgNetwork
  let models: Server
  let modelsBase: string
  let closedPort: number
  const hits = new Map<string, number>()
  const lines: string[] = []
  let clock = 1_000
  let reloads = 0 // the catalog reads the clock once per successful reload
  let catalog: ProviderCatalog
  let p1: Address // acknowledged, /v1/models lists two models
  let p2: Address // not acknowledged
  let p4: Address // acknowledged, /v1/models unreachable

  beforeAll(async () => {
    ;({ anvil, owner, clientsOf, network } = await chain())

    // The providers' public /v1/models, one path prefix per provider.
    models = createServer((req, res) => {
      hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1)
      const lists: Record<string, string[]> = {
        '/p1/v1/models': ['dev/chat-a', 'dev/chat-b'],
        '/p1-moved/v1/models': ['dev/chat-a', 'dev/chat-z'],
      }
      const ids = lists[req.url ?? '']
      if (ids) {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ object: 'list', data: ids.map((id) => ({ id, object: 'model' })) }))
      } else {
        res.statusCode = 404
        res.end()
      }
    })
    await new Promise<void>((resolve) => models.listen(0, '127.0.0.1', resolve))
    modelsBase = `http://127.0.0.1:${(models.address() as AddressInfo).port}`
    // A port nobody listens on: bind, note it, close.
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    closedPort = (probe.address() as AddressInfo).port
    await new Promise((resolve) => probe.close(resolve))

    p1 = await register(owner, clientsOf(1), {
      url: `${modelsBase}/p1/`,
      additionalInfo: '{"ProviderType":"decentralized","TEEVerifier":"dstack","Future":1}',
    })
    p2 = await register(owner, clientsOf(2), { url: `${modelsBase}/p2`, model: 'dev/chat-c' }, false)
    p4 = await register(owner, clientsOf(4), { url: `http://127.0.0.1:${closedPort}`, inputPrice: 3n })

    catalog = new ProviderCatalog({
      clients: createZgClients({ network }), // read-only
      allowPrivateUrls: true,
      refreshIntervalMs: 3_600_000, // anything that changes within the tests comes from the events
      eventPollIntervalMs: 200,
      eventDebounceMs: 300,
      modelsTimeoutMs: 500,
      log: (line) => lines.push(line),
      now: () => {
        reloads++
        return clock
      },
    })
    await catalog.start()
  })

  afterAll(async () => {
    await catalog?.stop()
    await anvil?.stop()
    models?.closeAllConnections()
    await new Promise((resolve) => models?.close(resolve))
  })

  it('lists only services whose TEE signer the owner acknowledged, and says why the others are left out', () => {
    expect(catalog.entries().map((e) => e.provider)).toEqual(byAddress(p1, p4))
    expect(catalog.byProvider(p2)).toBeUndefined()
    expect(catalog.excluded()).toEqual([
      { provider: p2, url: `${modelsBase}/p2`, reason: expect.stringMatching(/not acknowledged/) },
    ])
    expect(lines.some((l) => l.includes(p2) && /not acknowledged/.test(l))).toBe(true)
    expect(catalog.lastRefreshAt).toBe(1_000)
    expect(catalog.lastRefreshError).toBeUndefined()
  })

  it('builds entries from the chain and the provider /v1/models', () => {
    const e1 = catalog.byProvider(p1.toLowerCase())!
    expect(e1).toMatchObject({
      provider: p1,
      serviceType: 'chatbot',
      url: `${modelsBase}/p1`, // normalised: no trailing slash
      model: 'dev/chat-a',
      models: ['dev/chat-a', 'dev/chat-b'],
      inputPrice: 1n,
      outputPrice: 2n,
      verifiability: 'TeeML',
      teeSignerAddress: p1,
      teeSignerAcknowledged: true,
      healthy: true,
    })
    expect(e1.updatedAt).toBeGreaterThan(0n)
    expect(e1.additionalInfo).toMatchObject({
      valid: true,
      ProviderType: 'decentralized',
      TEEVerifier: 'dstack',
      extra: { Future: 1 },
    })

    // Unreachable /v1/models: still listed, with its on-chain model, but unhealthy.
    expect(catalog.byProvider(p4)).toMatchObject({ models: ['dev/chat-a'], healthy: false, inputPrice: 3n })
    expect(lines.some((l) => l.includes(p4) && /unhealthy/.test(l))).toBe(true)
  })

  it('answers candidates and models by model id', () => {
    expect(catalog.candidates('dev/chat-a').map((e) => e.provider)).toEqual(byAddress(p1, p4))
    expect(catalog.candidates('dev/chat-b').map((e) => e.provider)).toEqual([p1])
    expect(catalog.candidates('dev/chat-b', { serviceType: 'embedding' })).toEqual([])
    expect(catalog.candidates('gpt-4o')).toEqual([])
    expect(catalog.models().map((m) => [m.id, m.serviceType, m.providers.map((p) => p.provider)])).toEqual([
      ['dev/chat-a', 'chatbot', byAddress(p1, p4)],
      ['dev/chat-b', 'chatbot', [p1]],
    ])
  })

  it('picks up a ServiceUpdated (price change) from the events, long before the periodic refresh', async () => {
    const p1Hits = hits.get('/p1/v1/models')
    const before = catalog.byProvider(p1)!
    clock = 2_000
    const c1 = clientsOf(1)
    await addOrUpdateService(c1, {
      service: service(c1, { url: `${modelsBase}/p1/`, inputPrice: 5n, additionalInfo: before.additionalInfo.raw }),
    })
    const started = Date.now()
    await vi.waitFor(() => expect(catalog.byProvider(p1)?.inputPrice).toBe(5n), { timeout: 2_000, interval: 20 })
    expect(Date.now() - started).toBeLessThan(2_000)
    const after = catalog.byProvider(p1)!
    expect(after.teeSignerAcknowledged).toBe(true) // a price change keeps the acknowledgement
    expect(after.updatedAt).toBeGreaterThanOrEqual(before.updatedAt)
    expect(catalog.lastRefreshAt).toBe(2_000)
    // An event-driven reload does not call the providers again when only a price changed.
    expect(hits.get('/p1/v1/models')).toBe(p1Hits)
  })

  it('picks up a ProviderTEESignerAcknowledged: the provider appears', async () => {
    await acknowledgeTEESignerByOwner(owner, { provider: p2 })
    await vi.waitFor(() => expect(catalog.byProvider(p2)).toBeDefined(), { timeout: 2_000, interval: 20 })
    expect(catalog.byProvider(p2)).toMatchObject({ model: 'dev/chat-c', healthy: false })
    expect(catalog.excluded()).toEqual([])
    expect(catalog.candidates('dev/chat-c').map((e) => e.provider)).toEqual([p2])
  })

  it('picks up a ServiceRemoved: the provider is dropped', async () => {
    await removeService(clientsOf(4))
    await vi.waitFor(() => expect(catalog.byProvider(p4)).toBeUndefined(), { timeout: 2_000, interval: 20 })
    expect(catalog.candidates('dev/chat-a').map((e) => e.provider)).toEqual([p1])
    expect(lines.some((l) => l.includes(p4) && /removed/.test(l))).toBe(true)
  })

  it('a burst of events causes one reload', async () => {
    const before = reloads
    const [c1, c2] = [clientsOf(1), clientsOf(2)]
    const e2 = catalog.byProvider(p2)!
    await Promise.all([
      addOrUpdateService(c1, {
        service: service(c1, {
          url: `${modelsBase}/p1/`,
          inputPrice: 6n,
          additionalInfo: catalog.byProvider(p1)!.additionalInfo.raw,
        }),
      }),
      addOrUpdateService(c2, { service: service(c2, { url: e2.url, model: e2.model, inputPrice: 7n }) }),
    ])
    await vi.waitFor(
      () => {
        expect(catalog.byProvider(p1)?.inputPrice).toBe(6n)
        expect(catalog.byProvider(p2)?.inputPrice).toBe(7n)
      },
      { timeout: 2_000, interval: 20 },
    )
    await new Promise((resolve) => setTimeout(resolve, 600)) // a second reload would have happened by now
    expect(reloads - before).toBe(1)
  })

  it('a URL change makes the event-driven reload ask the provider for its models again', async () => {
    const c1 = clientsOf(1)
    const e1 = catalog.byProvider(p1)!
    await addOrUpdateService(c1, {
      service: service(c1, {
        url: `${modelsBase}/p1-moved`,
        inputPrice: e1.inputPrice,
        additionalInfo: e1.additionalInfo.raw,
      }),
    })
    await vi.waitFor(() => expect(catalog.byProvider(p1)?.url).toBe(`${modelsBase}/p1-moved`), {
      timeout: 2_000,
      interval: 20,
    })
    expect(catalog.byProvider(p1)).toMatchObject({ models: ['dev/chat-a', 'dev/chat-z'], healthy: true })
    expect(catalog.candidates('dev/chat-b')).toEqual([])
    expect(catalog.candidates('dev/chat-z').map((e) => e.provider)).toEqual([p1])
  })

  it('refresh() reloads on demand, asks every provider again, and concurrent calls coalesce', async () => {
    clock = 3_000
    const before = { reloads, hits: hits.get('/p1-moved/v1/models') ?? 0 }
    await Promise.all([catalog.refresh(), catalog.refresh(), catalog.refresh()])
    expect(catalog.lastRefreshAt).toBe(3_000)
    expect(catalog.entries()).toHaveLength(2)
    // One reload for the first call, one more for the calls that arrived while it ran.
    expect(reloads - before.reloads).toBe(2)
    expect(hits.get('/p1-moved/v1/models')).toBe(before.hits + 2)
  })

  it('reloads periodically on its own', async () => {
    const c = new ProviderCatalog({
      clients: createZgClients({ network }),
      allowPrivateUrls: true,
      refreshIntervalMs: 150,
      eventPollIntervalMs: 3_600_000, // no events: only the period can notice
      modelsTimeoutMs: 300,
    })
    await c.start()
    try {
      const c1 = clientsOf(1)
      const e1 = c.byProvider(p1)!
      await addOrUpdateService(c1, {
        service: service(c1, { url: e1.url, inputPrice: 8n, additionalInfo: e1.additionalInfo.raw }),
      })
      await vi.waitFor(() => expect(c.byProvider(p1)?.inputPrice).toBe(8n), { timeout: 2_000, interval: 20 })
    } finally {
      await c.stop()
    }
  })

  it('keeps serving the last good catalog through a chain outage, records the error and logs it once', async () => {
    // The main catalog has seen the last change (made during the previous test) before the chain goes away.
    await vi.waitFor(() => expect(catalog.byProvider(p1)?.inputPrice).toBe(8n), { timeout: 2_000, interval: 20 })
    const before = catalog.entries()
    const logged = lines.length
    await anvil.stop()
    clock = 4_000

    const err = await catalog.refresh().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CatalogRefreshError)
    expect((err as Error).message).toMatch(/could not read the services from custom \(http:\/\/127\.0\.0\.1:\d+\)/)
    await expect(catalog.refresh()).rejects.toBeInstanceOf(CatalogRefreshError)
    // Let the event watch fail a few times too.
    await new Promise((resolve) => setTimeout(resolve, 700))

    expect(catalog.entries()).toEqual(before)
    expect(catalog.byProvider(p1)?.inputPrice).toBe(8n)
    expect(catalog.lastRefreshError).toBeInstanceOf(CatalogRefreshError)
    expect(catalog.lastRefreshError?.message).toBe((err as Error).message)
    expect(catalog.lastRefreshAt).toBe(3_000)
    const outage = lines.slice(logged)
    expect(outage.filter((l) => /serving the last good catalog/.test(l))).toHaveLength(1)
    expect(outage.filter((l) => /could not poll service events/.test(l))).toHaveLength(1)
    expect(outage).toHaveLength(2)
  })

  it('start() rejects when the first load fails, and leaves nothing running', async () => {
    const c = new ProviderCatalog({ clients: createZgClients({ network }), allowPrivateUrls: true })
    await expect(c.start()).rejects.toBeInstanceOf(CatalogRefreshError)
    expect(c.lastRefreshError).toBeInstanceOf(CatalogRefreshError)
    expect(c.entries()).toEqual([])
    await c.stop()
  })
})

describe('ProviderCatalog URL safety', () => {
  let anvil: Anvil
  let owner: ZgWalletClients
  let clientsOf: (i: number) => ZgWalletClients
  let network: ZgNetwork
  const addr: Record<string, Address> = {}

  beforeAll(async () => {
    ;({ anvil, owner, clientsOf, network } = await chain())
    const urls = {
      metadata: 'http://169.254.169.254/',
      public: 'https://93.184.215.14/base/',
      loopback: 'http://127.0.0.1:9',
      credentials: 'http://user:pw@93.184.215.14/',
      ftp: 'ftp://93.184.215.14/',
      mapped: 'http://[::ffff:10.0.0.1]/',
    }
    let i = 1
    for (const [name, url] of Object.entries(urls)) addr[name] = await register(owner, clientsOf(i++), { url })
  })
  afterAll(async () => {
    await anvil?.stop()
  })

  // fetchModels off: the public address must not be contacted from a test.
  const listed = (c: ProviderCatalog) => c.entries().map((e) => e.provider)
  const reasons = (c: ProviderCatalog) => Object.fromEntries(c.excluded().map((x) => [x.provider, x.reason]))

  it('leaves out provider URLs that point at private, loopback or metadata addresses', async () => {
    const lines: string[] = []
    const c = new ProviderCatalog({
      clients: createZgClients({ network }),
      fetchModels: false,
      log: (l) => lines.push(l),
    })
    await c.refresh()
    expect(listed(c)).toEqual([addr.public])
    expect(c.byProvider(addr.public!)).toMatchObject({ url: 'https://93.184.215.14/base', healthy: true })
    const why = reasons(c)
    expect(why[addr.metadata!]).toMatch(/metadata/)
    expect(why[addr.loopback!]).toMatch(/loopback/)
    expect(why[addr.mapped!]).toMatch(/IPv4-mapped private/)
    expect(why[addr.credentials!]).toMatch(/credentials/)
    expect(why[addr.ftp!]).toMatch(/only http and https/)
    expect(lines.filter((l) => /leaving out/.test(l))).toHaveLength(5)
    // The same reasons are not logged again on the next reload.
    await c.refresh()
    expect(lines.filter((l) => /leaving out/.test(l))).toHaveLength(5)
    await c.stop()
  })

  it('allows private addresses when allowPrivateUrls (the devnet), but never credentials or other schemes', async () => {
    const c = new ProviderCatalog({ clients: createZgClients({ network }), fetchModels: false, allowPrivateUrls: true })
    await c.refresh()
    expect(listed(c)).toEqual(byAddress(addr.metadata!, addr.public!, addr.loopback!, addr.mapped!))
    expect(c.excluded().map((x) => x.provider)).toEqual(byAddress(addr.credentials!, addr.ftp!))
    await c.stop()
  })
})

describe('ProviderCatalog service types', () => {
  let anvil: Anvil
  let network: ZgNetwork
  const addr: Record<string, Address> = {}

  beforeAll(async () => {
    let owner: ZgWalletClients
    let clientsOf: (i: number) => ZgWalletClients
    ;({ anvil, owner, clientsOf, network } = await chain())
    // What newer 0G brokers register beside the types the gateway serves (0g-protocol.md §11), and one from the future.
    const services: Record<string, Partial<ServiceParams>> = {
      chat: { serviceType: 'chatbot' },
      tts: { serviceType: 'audio-generation', model: 'dev/tts' },
      edit: { serviceType: 'image-editing', model: 'dev/edit' },
      video: { serviceType: 'video-generation', model: 'seedance-1.0' },
      future: { serviceType: 'some-future-type', model: 'future-1' },
      // additionalInfo is untrusted text: not JSON here, which must not cost the service its listing.
      garbled: { serviceType: 'chatbot', model: 'dev/chat-g', additionalInfo: '{"TEEVerifier": dstack' },
    }
    let i = 1
    for (const [name, over] of Object.entries(services)) {
      addr[name] = await register(owner, clientsOf(i), { url: `http://127.0.0.1:${21_000 + i}`, ...over })
      i++
    }
  })
  afterAll(async () => {
    await anvil?.stop()
  })

  it('lists the types it serves, leaves out the others with one log line each, and keeps going', async () => {
    const lines: string[] = []
    const c = new ProviderCatalog({
      clients: createZgClients({ network }),
      fetchModels: false,
      allowPrivateUrls: true,
      log: (l) => lines.push(l),
    })
    await c.refresh()
    expect(c.entries().map((e) => e.provider)).toEqual(byAddress(addr.chat!, addr.tts!, addr.edit!, addr.garbled!))
    expect(c.byProvider(addr.tts!)).toMatchObject({ serviceType: 'audio-generation', models: ['dev/tts'] })
    expect(c.byProvider(addr.garbled!)?.additionalInfo).toMatchObject({ valid: false })
    expect(c.excluded()).toEqual(
      byAddress(addr.video!, addr.future!).map((provider) => ({
        provider,
        url: expect.any(String),
        reason:
          provider === addr.video
            ? 'service type "video-generation" is not served by this gateway'
            : 'service type "some-future-type" is not served by this gateway',
      })),
    )
    const skipped = () => lines.filter((l) => /leaving out .* service type/.test(l))
    expect(skipped()).toHaveLength(2)
    expect(skipped().find((l) => l.includes(addr.video!))).toMatch(/video-generation/)
    expect(skipped().find((l) => l.includes(addr.future!))).toMatch(/some-future-type/)
    // Not again on every refresh.
    await c.refresh()
    await c.refresh()
    expect(skipped()).toHaveLength(2)
    expect(c.lastRefreshError).toBeUndefined()
    expect(c.models().map((m) => [m.id, m.serviceType])).toEqual([
      ['dev/chat-a', 'chatbot'],
      ['dev/chat-g', 'chatbot'],
      ['dev/edit', 'image-editing'],
      ['dev/tts', 'audio-generation'],
    ])
    await c.stop()
  })

  it('lists any type it is told to', async () => {
    const c = new ProviderCatalog({
      clients: createZgClients({ network }),
      fetchModels: false,
      allowPrivateUrls: true,
      serviceTypes: new Set(['video-generation']),
    })
    await c.refresh()
    expect(c.entries().map((e) => e.provider)).toEqual([addr.video])
    await c.stop()
  })
})

describe('ProviderCatalog paging', () => {
  const N = 51 // one past the contract's page of 50
  let anvil: Anvil
  let network: ZgNetwork

  beforeAll(async () => {
    let owner: ZgWalletClients
    let clientsOf: (i: number) => ZgWalletClients
    ;({ anvil, owner, clientsOf, network } = await chain({ accounts: N + 1 }))
    const providers = Array.from({ length: N }, (_, k) => clientsOf(k + 1))
    // Different senders, so the registrations can go in parallel; the owner's acknowledgements share a nonce.
    await Promise.all(
      providers.map((c, k) =>
        addOrUpdateService(c, {
          service: service(c, { url: `http://127.0.0.1:${20_000 + k}` }),
          stake: parseEther('100'),
        }),
      ),
    )
    for (const c of providers) await acknowledgeTEESignerByOwner(owner, { provider: c.walletClient.account.address })
  }, 120_000)
  afterAll(async () => {
    await anvil?.stop()
  })

  it('lists every service past the first page of 50', async () => {
    const c = new ProviderCatalog({ clients: createZgClients({ network }), fetchModels: false, allowPrivateUrls: true })
    await c.refresh()
    expect(c.entries()).toHaveLength(N)
    expect(c.candidates('dev/chat-a')).toHaveLength(N)
    await c.stop()
  })
})
