import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Hono } from 'hono'
import type { LocalAccount } from 'viem'
import type { MeasurementPolicy } from '../attestation/evidence/measurement-policy.ts'
import { EscrowManager, type EscrowOptions } from '../billing/escrow.ts'
import { fetchUnsettledFee } from '../billing/reconciliation.ts'
import { SessionTokenCache } from '../billing/session-token-cache.ts'
import { createZgClients } from '../chain/clients.ts'
import type { ZgNetwork } from '../chain/networks.ts'
import { withAccountKey } from '../chain/secp256k1.ts'
import { eciesDecrypt } from '../fine-tuning/ecies.ts'
import { listenApp } from '../http/listen.ts'
import { GatewayObservability } from '../observability/gateway.ts'
import { type Logger, lineLogger } from '../observability/logger.ts'
import { ProviderCatalog } from '../providers/catalog.ts'
import type { HealthOptions } from '../providers/health.ts'
import { ModelAliases } from '../providers/model-aliases.ts'
import { modelsProbe, Prober } from '../providers/probes.ts'
import { createProviderAgent } from '../providers/provider-agent.ts'
import { Router } from '../providers/router.ts'
import { checkProviderUrl } from '../providers/url-safety.ts'
import { type GatewayReconcilerOptions, startGatewayReconciler } from './admin/reconciliation.ts'
import { createGatewayApp } from './app.ts'
import { DeliveryVerifier } from './delivery-verifier.ts'
import { adapterDeployer } from './fine-tuning/adapter-deploy.ts'
import { FineTuning } from './fine-tuning/fine-tuning.ts'
import { serialQueue } from './fine-tuning/serial-queue.ts'
import { tunedModelDirectory } from './fine-tuning/tuned-models.ts'
import type { GatewayCore } from './forward.ts'
import type { KeyStore } from './http/api-keys.ts'
import type { CorsOrigins } from './http/cors.ts'
import { lazyAttester } from './lazy-attester.ts'
import { OffPathQueue } from './off-path.ts'
import { type GatewayStores, openGatewayStores } from './stores.ts'
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, type UpstreamLimits, type UpstreamTimeouts } from './upstream-limits.ts'

export type GatewayOptions = {
  network: ZgNetwork
  /** The wallet that pays providers: its ledger funds their sub-accounts; it signs session tokens and receipts. */
  wallet: LocalAccount
  /** Where the gateway keeps its state (gateway.sqlite: API keys; usage.sqlite: usage, receipts; responses.sqlite). */
  dataDir: string
  /**
   * `postgres://…`: keys, budgets, rate windows, usage and receipts in Postgres, shared by several instances
   * (`--store`, `ZG_STORE_URL`). Unset: SQLite files in `dataDir`.
   */
  store?: string
  host?: string
  /** Default 8080; 0 picks a free port. */
  port?: number
  /** Accept this well-known key (dev mode only). */
  devKey?: string
  /** The admin API's key (`/admin/*`); distinct from every inference key. Without one the admin API is off. */
  adminKey?: string
  /** API keys from configuration (held hashed in memory). */
  apiKeys?: string[]
  /** Providers on loopback/private addresses are allowed (the devnet). Default false. */
  allowPrivateUrls?: boolean
  /** Open sub-accounts and refill them with verified fees. Default true. */
  autoFund?: boolean
  initialDeposit?: bigint
  /** The escrow funding policy: reserve, dispute threshold, spend window, background interval. */
  funding?: Pick<EscrowOptions, 'reserve' | 'minTopUp' | 'spendWindowMs' | 'disputes' | 'intervalMs'>
  keepAliveMs?: number
  /** The circuit breakers (threshold, cool-down, …; src/providers/health.ts) and the active probes' period. */
  health?: HealthOptions & { probeIntervalMs?: number }
  /** How long the gateway waits on a provider; defaults in upstream-limits.ts. */
  timeouts?: Partial<UpstreamTimeouts>
  /** How much it reads of a provider's answer. */
  limits?: Partial<UpstreamLimits>
  maxAttempts?: number
  catalogRefreshMs?: number
  /** Model names standing for models on the network: [alias, target] pairs. */
  modelAliases?: Iterable<readonly [alias: string, target: string]>
  /** Origins browser apps may call from (`*`, `https://app.example`, `http://localhost:*`). Default: none. */
  corsOrigins?: CorsOrigins
  /** Reconciling on-chain charges with the usage ledger in the background (GET /admin/reconciliation); false: off. */
  reconciliation?: GatewayReconcilerOptions | false
  /**
   * Attesting providers' signers (L2/L3) when a key or a request asks for it: where Intel's collateral comes from
   * (Intel PCS by default, or a PCCS), and the L3 allowlists.
   */
  attestation?: { pccsUrl?: string; measurementPolicy?: MeasurementPolicy }
  /**
   * Where request lines and the components' messages go (src/observability/logger.ts). Without one, no request is
   * logged and messages go to `log`.
   */
  logger?: Logger
  /** /metrics answers any client, not only loopback ones and holders of the admin key (`--metrics-public`). */
  metricsPublic?: boolean
  /**
   * The fine-tuning API (on when the network has a FineTuningServing contract): how often jobs are followed, the
   * largest training file; false turns it off.
   */
  fineTuning?: { pollMs?: number; fileLimit?: number } | false
  log?: (line: string) => void
}

export type Gateway = {
  url: string
  port: number
  app: Hono
  core: GatewayCore
  keys: KeyStore
  /** Which store the gateway runs on (sqlite or postgres) and where. */
  stores: Pick<GatewayStores, 'kind' | 'where'>
  close(): Promise<void>
}

/** Builds the gateway's parts without listening (for embedding its fetch handler). */
export async function createGatewayCore(options: GatewayOptions) {
  const log = options.log ?? (options.logger ? lineLogger(options.logger) : (line: string) => console.error(line))
  const clients = createZgClients({ network: options.network, account: options.wallet })
  const catalog = new ProviderCatalog({
    clients,
    allowPrivateUrls: options.allowPrivateUrls ?? false,
    refreshIntervalMs: options.catalogRefreshMs,
    log,
  })
  mkdirSync(options.dataDir, { recursive: true })
  const offPath = new OffPathQueue()
  const stores = await openGatewayStores({
    dataDir: options.dataDir,
    store: options.store,
    whenIdle: (commit) => offPath.add(commit),
    log,
  })
  const keys = stores.keys
  for (const [i, key] of (options.apiKeys ?? []).entries()) keys.addStaticKey(key, `config-${i + 1}`)
  // Keep-alive pool per provider; DNS answers are re-checked on every connect (no rebinding to private hosts).
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts }
  const dispatcher = createProviderAgent({
    allowPrivate: options.allowPrivateUrls ?? false,
    keepAliveTimeoutMs: 60_000,
    connections: 1024,
    connectTimeoutMs: timeouts.connectMs,
  })
  const core: GatewayCore = {
    catalog,
    // Ranked by escrow headroom among the rest: the funding policy's last view of each sub-account.
    router: new Router({ catalog, headroom: (provider) => core.escrow?.headroom(provider), ...options.health }),
    tokens: new SessionTokenCache({ clients, account: options.wallet }),
    escrow:
      options.autoFund === false
        ? undefined
        : new EscrowManager({
            clients,
            initialDeposit: options.initialDeposit,
            ...options.funding,
            // A provider the policy stopped is no candidate; the provider itself says what it is owed.
            onFlag: (provider, flagged) => core.router.setFlagged(provider, flagged),
            walletLock: stores.walletLock,
            unsettledFee: async (provider) => {
              const entry = core.catalog.byProvider(provider)
              if (!entry) throw new Error('the provider is not in the catalog')
              const authorization = await core.tokens.authorization(entry.provider)
              return fetchUnsettledFee({ url: entry.url, user: options.wallet.address, authorization, dispatcher })
            },
            log,
          }),
    ledger: stores.ledger,
    responses: stores.responses,
    dispatcher,
    verifier: new DeliveryVerifier({ dispatcher }),
    attestations: lazyAttester(async () => {
      const { SignerAttestations, guardedCollateralSource } = await import('../attestation/signer-attestation.ts')
      return new SignerAttestations({
        dispatcher,
        collateral: guardedCollateralSource(dispatcher, {
          baseUrl: options.attestation?.pccsUrl,
          cacheDir: join(options.dataDir, 'collateral'),
        }),
        measurementPolicy: options.attestation?.measurementPolicy,
        log,
      })
    }),
    // The wallet vouches for what it paid for: each checked delivery's receipt is signed with it.
    receiptSigner: options.wallet,
    offPath,
    keepAliveMs: options.keepAliveMs ?? 15_000,
    timeouts,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    maxAttempts: options.maxAttempts ?? 3,
    aliases: new ModelAliases(options.modelAliases),
    log,
  }
  core.observability = new GatewayObservability({
    logger: options.logger,
    // Read at scrape time from what the gateway holds: the router's circuits, the escrow policy's last figures.
    sources: {
      breakers: () =>
        [...new Set(core.catalog.entries().map((e) => e.provider))].map((provider) => ({
          provider,
          state: core.router.health(provider).state,
        })),
      escrow: () => core.escrow?.status() ?? [],
    },
  })
  // A provider stopped for its disputes stays stopped across restarts (a week of checked calls).
  core.escrow?.restore(
    await core.ledger.calls({ since: Date.now() - 7 * 86_400_000, limit: 100_000 }),
    await core.ledger.resumes(),
  )
  let ready = false
  await catalog.start().then(() => {
    ready = true
  })
  // Open circuits, providers whose last call failed and idle ones are probed, so no user's call pays for the test.
  core.prober = new Prober({
    router: core.router,
    entries: () => core.catalog.entries(),
    probe: modelsProbe({ dispatcher, timeoutMs: timeouts.firstByteMs }),
    intervalMs: options.health?.probeIntervalMs,
  })
  core.prober.start()
  if (options.reconciliation !== false) {
    core.reconciler = startGatewayReconciler(core, {
      clients,
      user: options.wallet.address,
      dataDir: options.dataDir,
      options: options.reconciliation,
    })
  }
  const fineTuning =
    options.fineTuning !== false && options.network.contracts.fineTuning
      ? new FineTuning({
          dataDir: options.dataDir,
          records: stores.fineTuning,
          clients,
          account: options.wallet,
          dispatcher,
          walletTransaction: core.escrow ? (fn) => core.escrow!.walletTransaction(fn) : serialQueue(),
          // The artifact's key was ECIES-encrypted to the wallet: only its private key opens it.
          decryptSecret: (encrypted) => withAccountKey(options.wallet, (key) => eciesDecrypt(key, encrypted)),
          deployAdapter: adapterDeployer(core),
          checkUrl: async (url) => {
            await checkProviderUrl(url, { allowPrivate: options.allowPrivateUrls ?? false })
          },
          budgets: keys.budgets,
          pollMs: options.fineTuning?.pollMs,
          fileLimit: options.fineTuning?.fileLimit,
          log,
        })
      : undefined
  if (fineTuning) {
    core.tunedModels = tunedModelDirectory(fineTuning.records)
    core.fineTuning = fineTuning
    fineTuning.start()
  }
  const app = createGatewayApp({
    core,
    keys,
    fineTuning,
    rateLimiter: stores.rateLimiter,
    devKey: options.devKey,
    adminKey: options.adminKey,
    metricsPublic: options.metricsPublic,
    corsOrigins: options.corsOrigins,
    ready: () => ready,
    log,
  })
  return { core, keys, stores, app, log }
}

/** Starts the OpenAI-compatible gateway over the providers of `network`. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { core, keys, stores, app } = await createGatewayCore(options)
  const server = await listenApp(app.fetch, {
    hostname: options.host ?? '127.0.0.1',
    port: options.port ?? 8080,
    what: 'the gateway',
  })
  const { port, address } = server.address() as AddressInfo
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    app: app as unknown as Hono,
    core,
    keys,
    stores: { kind: stores.kind, where: stores.where },
    close: () =>
      closeGatewayCore(core, stores, async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
        })
      }),
  }
}

/**
 * Stops what {@link createGatewayCore} started: the catalog's refresh first, then `drain` (a listening server's
 * close), then the calls' records and checks still queued, the provider connections and the stores (which commit
 * their last records).
 */
export async function closeGatewayCore(core: GatewayCore, stores: GatewayStores, drain?: () => Promise<void>) {
  await core.catalog.stop()
  await core.prober?.stop()
  await core.fineTuning?.close()
  core.escrow?.close()
  await core.reconciler?.stop()
  await drain?.()
  // Every delivered call gets its record and its check before the connections and the stores close.
  core.offPath.flush()
  await core.verifier.close()
  await core.attestations?.close()
  await core.dispatcher.close()
  await stores.close()
}
