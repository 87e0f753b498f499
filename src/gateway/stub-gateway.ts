import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { listenApp } from '../http/listen.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import { createGatewayApp } from './app.ts'
import type { Delivery } from './delivery-verifier.ts'
import type { GatewayCore } from './forward.ts'
import type { ApiKeyStore } from './http/api-keys.ts'
import type { ResponseStore } from './responses/store.ts'
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS } from './upstream-limits.ts'

/** For tests of the gateway's HTTP app against a provider they stand up themselves: one provider, no chain. */
export type StubGateway = {
  /** The gateway's OpenAI base URL (`…/v1`); its API key is `sk-test`. */
  baseURL: string
  /** Every delivery handed to the verifier (whose answer is always "unverified"), in order. */
  deliveries: Delivery[]
  /** Every provider address reported failed to the router. */
  failures: string[]
  close(): Promise<void>
}

/**
 * The real gateway app and forward path, listening on a free port, in front of one provider at `providerUrl`
 * serving `model`: a chain, session tokens, a ledger and a verifier are stood in for, so a test can make the
 * provider misbehave in ways a real node never would.
 */
export async function startStubGateway(options: {
  providerUrl: string
  model: string
  serviceType: string
  maxAttempts?: number
  responses?: ResponseStore
}): Promise<StubGateway> {
  const { model } = options
  const deliveries: Delivery[] = []
  const failures: string[] = []
  const dispatcher = new Agent()
  const entry = {
    provider: '0x00000000000000000000000000000000000000aa',
    serviceType: options.serviceType,
    url: options.providerUrl,
    model,
    models: [model],
    inputPrice: 0n,
    outputPrice: 0n,
    verifiability: 'TeeML',
    teeSignerAddress: '0x00000000000000000000000000000000000000bb',
    teeSignerAcknowledged: true,
    updatedAt: 1n,
    healthy: true,
  } as unknown as CatalogEntry
  const core = {
    catalog: { candidates: () => [entry], models: () => [{ id: model, providers: [entry] }], entries: () => [entry] },
    router: {
      candidates: (asked: string) => (asked === model ? [entry] : []),
      reportFailure: (address: string) => failures.push(address),
      reportSuccess: () => {},
    },
    tokens: { cachedAuthorization: () => 'Bearer app-sk-test', authorization: async () => 'Bearer app-sk-test' },
    ledger: { record: () => {}, recordDurably: async () => {}, setVerification: () => {}, get: () => undefined },
    responses: options.responses,
    dispatcher,
    verifier: {
      verify: async (delivery: Delivery) => {
        deliveries.push(delivery)
        return { status: 'unverified', level: null, detail: 'stub' }
      },
    },
    offPath: { idle: () => {}, add: (job: () => void) => job() },
    keepAliveMs: 15_000,
    timeouts: { ...DEFAULT_TIMEOUTS, firstByteMs: 5_000, totalMs: 5_000 },
    limits: DEFAULT_LIMITS,
    maxAttempts: options.maxAttempts ?? 1,
    aliases: { size: 0 },
    log: () => {},
  } as unknown as GatewayCore
  const app = createGatewayApp({
    core,
    keys: { verify: () => undefined } as unknown as ApiKeyStore,
    devKey: 'sk-test',
    ready: () => true,
    log: () => {},
  })
  const gateway = await listenApp(app.fetch, { hostname: '127.0.0.1', port: 0 })
  return {
    baseURL: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/v1`,
    deliveries,
    failures,
    async close() {
      await new Promise((resolve) => gateway.close(resolve))
      await dispatcher.close()
    },
  }
}
