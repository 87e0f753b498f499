import { join } from 'node:path'
import { type Address, formatEther, parseEther } from 'viem'
import { createInsecureDevSigner } from '../attestation/dev-signer.ts'
import { acknowledgeTEESignerByOwner } from '../chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addLedger } from '../chain/actions/add-ledger.ts'
import { addOrUpdateService } from '../chain/actions/add-or-update-service.ts'
import { getAccount } from '../chain/actions/get-account.ts'
import { getLedger } from '../chain/actions/get-ledger.ts'
import { getService } from '../chain/actions/get-service.ts'
import { transferFund } from '../chain/actions/transfer-fund.ts'
import { createZgClients } from '../chain/clients.ts'
import { LOCALHOST_ORIGINS } from '../gateway/http/cors.ts'
import { type Gateway, startGateway } from '../gateway/server.ts'
import { ensurePortFree } from '../http/listen.ts'
import type { Logger } from '../observability/logger.ts'
import { type ProviderNode, startProviderNode } from '../provider-node/server.ts'
import { anvilAccount, anvilPrivateKey } from './anvil.ts'
import {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
  type DevBackend,
  startDevBackend,
} from './backends/index.ts'
import { type Devnet, startDevnet, writeDevnetInfo } from './devnet.ts'
import { type DevFineTuningProvider, startDevFineTuningProvider } from './fine-tuning-provider.ts'
import { type GatewayInstance, spawnGatewayInstance, startRoundRobin } from './gateway-instances.ts'
import { DEV_MODEL_ALIASES } from './model-aliases.ts'
import { startPostgresServer } from './postgres-server.ts'

/** The dev wallet: anvil account 1. Its ledger pays every provider; the gateway signs its session tokens. */
export const DEV_WALLET_INDEX = 1
export const DEV_API_KEY = 'sk-zg-dev'
/** The dev stack's admin key (`/admin/*`), unless ZG_DEV_ADMIN_KEY is set; dev mode only. */
export const DEV_ADMIN_KEY = 'sk-zg-dev-admin'
/** How often the dev gateway looks at a running fine-tuning job: the dev trainer takes seconds, not hours. */
const DEV_FINE_TUNING_POLL_MS = 300

type ProviderSpec = {
  name: string
  account: number
  serviceType: string
  model: string
  verifiability: 'TeeML' | 'standard'
  inputPrice: bigint
  outputPrice: bigint
}

/**
 * The devnet's providers, priced like 0G's own listings (0.05 0G per million input tokens and so on), one per
 * service type; media are priced per unit (an image, a second of audio). Two serve the chat model: one signs in a
 * (dev) TEE with verifiability TeeML, the other is a plain `standard` forwarder, so the gateway's routing,
 * verification levels and failover all have something to choose between. Accounts 0 (the contracts' owner) and 1
 * (the dev wallet) are taken; 9 is left free.
 */
export const DEV_PROVIDERS: readonly ProviderSpec[] = [
  {
    name: 'chat-tee',
    account: 2,
    serviceType: 'chatbot',
    model: DEV_CHAT_MODEL,
    verifiability: 'TeeML',
    inputPrice: 50_000_000_000n,
    outputPrice: 100_000_000_000n,
  },
  {
    name: 'chat-standard',
    account: 3,
    serviceType: 'chatbot',
    model: DEV_CHAT_MODEL,
    verifiability: 'standard',
    inputPrice: 40_000_000_000n,
    outputPrice: 80_000_000_000n,
  },
  {
    name: 'embedding',
    account: 4,
    serviceType: 'embedding',
    model: DEV_EMBEDDING_MODEL,
    verifiability: 'TeeML',
    inputPrice: 10_000_000_000n,
    outputPrice: 0n,
  },
  {
    name: 'image',
    account: 5,
    serviceType: 'text-to-image',
    model: DEV_IMAGE_MODEL,
    verifiability: 'TeeML',
    inputPrice: 0n,
    outputPrice: parseEther('0.01'),
  },
  {
    name: 'speech',
    account: 6,
    serviceType: 'speech-to-text',
    model: DEV_STT_MODEL,
    verifiability: 'TeeML',
    inputPrice: parseEther('0.0001'),
    outputPrice: 0n,
  },
  {
    // Text-to-speech bills seconds of audio out at the output price: a 120 s reservation is 0.012 0G.
    name: 'tts',
    account: 7,
    serviceType: 'audio-generation',
    model: DEV_TTS_MODEL,
    verifiability: 'TeeML',
    inputPrice: 0n,
    outputPrice: parseEther('0.0001'),
  },
  {
    name: 'image-edit',
    account: 8,
    serviceType: 'image-editing',
    model: DEV_IMAGE_EDIT_MODEL,
    verifiability: 'TeeML',
    inputPrice: 0n,
    outputPrice: parseEther('0.01'),
  },
]

export type DevStackOptions = {
  dataDir: string
  /** Gateway port (default 8080; 0 = any free port). */
  port?: number
  /** Anvil port (default 8545; 0 = any free port). */
  chainPort?: number
  lockTime?: bigint
  devKey?: string
  /** The admin API's key (default sk-zg-dev-admin). */
  adminKey?: string
  /** Streaming pace of the dev backend, ms per token (default 10). */
  tokenDelayMs?: number
  /** How long the dev backend waits before its first token (default 0). */
  firstTokenDelayMs?: number
  /** The gateway's keep-alive comment interval on silent streams (default 15 s). */
  keepAliveMs?: number
  /**
   * Gateway instances (default 1). With more, instance 1 runs in this process and the others as `zg-gateway serve`
   * processes, all on one Postgres, behind a round-robin front on `port`.
   */
  instances?: number
  /**
   * `postgres://…`: the gateway's keys, budgets and usage in Postgres. Several instances without one get a
   * throwaway PostgreSQL server for the run.
   */
  store?: string
  log?: (line: string) => void
  /**
   * Request lines and the gateway's and nodes' messages (`zg-gateway dev --log-level`). The provider nodes' own
   * request lines show at debug only: at info each call would print twice.
   */
  logger?: Logger
}

export type DevStack = {
  devnet: Devnet
  backend: DevBackend
  nodes: Array<{ spec: ProviderSpec; address: Address; node: ProviderNode }>
  /** The fine-tuning provider: the dev trainer behind 0G's fine-tuning API, registered on FineTuningServing. */
  fineTuning: DevFineTuningProvider
  /** Instance 1, in this process. */
  gateway: Gateway
  /** Where clients go: the gateway, or the round-robin front before several instances. */
  url: string
  /** The instances after the first, each its own process. */
  instances: GatewayInstance[]
  /** Which store the gateway instances share, and where (the URL without its password). */
  store: { kind: 'sqlite' | 'postgres'; where: string }
  devKey: string
  adminKey: string
  stop(): Promise<void>
}

/**
 * The whole marketplace on one machine: the devnet with the real 0G contracts, the dev backends, a provider node
 * per dev service (registered, staked and acknowledged on-chain), the dev wallet's ledger with a funded
 * sub-account per provider, and the gateway. State lives in `dataDir`; a restart reuses all of it.
 */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const log = options.log ?? (() => {})
  const { logger } = options
  const nodeLogger = logger?.child(
    { component: 'provider-node' },
    { level: logger.isLevelEnabled('debug') || !logger.isLevelEnabled('warn') ? logger.level : 'warn' },
  )
  // Both ports are checked before a chain is started or a contract deployed, rather than failing at the end.
  await ensurePortFree('127.0.0.1', options.port ?? 8080, 'the gateway')
  await ensurePortFree('127.0.0.1', options.chainPort ?? 8545, 'the chain (anvil)')
  const devnet = await startDevnet({
    dataDir: options.dataDir,
    port: options.chainPort ?? 8545,
    lockTime: options.lockTime,
    log,
  })
  const stops: Array<() => Promise<void>> = [() => devnet.stop()]
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
  }
  try {
    const network = devnet.network
    const owner = createZgClients({ network, account: anvilAccount(0) })
    const backend = await startDevBackend({
      port: 0,
      tokenDelayMs: options.tokenDelayMs ?? 10,
      firstTokenDelayMs: options.firstTokenDelayMs ?? 0,
    })
    stops.push(() => backend.close())

    const nodes: DevStack['nodes'] = []
    for (const spec of DEV_PROVIDERS) {
      const clients = createZgClients({ network, account: anvilAccount(spec.account) })
      const address = clients.walletClient.account.address
      const dir = join(options.dataDir, 'providers', spec.name)
      const signer = await createInsecureDevSigner({ keyFile: join(dir, 'tee-signer.key') })
      const node = await startProviderNode({
        clients,
        backendUrl: backend.url,
        signer,
        dataDir: dir,
        settleIntervalMs: 60_000,
        ...(nodeLogger ? { logger: nodeLogger.child({ provider: spec.name }) } : { log }),
      })
      stops.push(() => node.close())
      const service = {
        serviceType: spec.serviceType,
        url: node.url,
        model: spec.model,
        verifiability: spec.verifiability,
        inputPrice: spec.inputPrice,
        outputPrice: spec.outputPrice,
        additionalInfo: JSON.stringify({
          TEEVerifier: 'insecure-dev',
          TargetSeparated: false,
          ProviderType: 'decentralized',
        }),
        teeSignerAddress: signer.address,
      }
      const current = await getService(clients, { provider: address })
      // The node's port changes between runs: a new URL keeps the owner's acknowledgement, other changes reset it.
      if (!current) await addOrUpdateService(clients, { service, stake: parseEther('100') })
      else if (current.url !== service.url || current.teeSignerAddress !== service.teeSignerAddress) {
        await addOrUpdateService(clients, { service: { ...service, additionalInfo: current.additionalInfo } })
      }
      if (!(await getService(clients, { provider: address }))?.teeSignerAcknowledged) {
        await acknowledgeTEESignerByOwner(owner, { provider: address })
      }
      nodes.push({ spec, address, node })
    }

    const fineTuning = await startDevFineTuningProvider({
      network,
      owner,
      dataDir: join(options.dataDir, 'providers', 'fine-tuning'),
      log,
    })
    stops.push(() => fineTuning.node.close())

    const walletAccount = anvilAccount(DEV_WALLET_INDEX)
    const wallet = createZgClients({ network, account: walletAccount })
    if (!(await getLedger(wallet, { user: walletAccount.address })))
      await addLedger(wallet, { amount: parseEther('1000') })
    for (const { address } of nodes) {
      if (!(await getAccount(wallet, { user: walletAccount.address, provider: address }))) {
        await transferFund(wallet, { provider: address, amount: parseEther('10') })
      }
    }
    await writeDevnetInfo(options.dataDir, {
      ...devnet.info,
      wallet: walletAccount.address,
      providers: [
        ...nodes.map((n) => ({ address: n.address, url: n.node.url, name: n.spec.name })),
        { address: fineTuning.address, url: fineTuning.node.url, name: 'fine-tuning' },
      ],
    })

    const devKey = options.devKey ?? DEV_API_KEY
    const adminKey = options.adminKey ?? DEV_ADMIN_KEY
    const instances = options.instances ?? 1
    let store = options.store
    if (instances > 1 && !store) {
      const server = await startPostgresServer()
      stops.push(() => server.stop())
      store = server.url
      log(`PostgreSQL for the gateway instances: ${server.url} (throwaway: pass --store to keep keys and usage)`)
    }
    const gateway = await startGateway({
      network,
      wallet: walletAccount,
      dataDir: join(options.dataDir, 'gateway'),
      store,
      port: instances > 1 ? 0 : (options.port ?? 8080),
      // With several instances the dev key is a configured key on each, so it is the same key (one id) on all of
      // them: its files, jobs and stored responses are found whichever instance a call reaches.
      ...(instances > 1 ? { apiKeys: [devKey] } : { devKey }),
      adminKey,
      allowPrivateUrls: true,
      keepAliveMs: options.keepAliveMs,
      modelAliases: DEV_MODEL_ALIASES,
      // Browser apps on any local dev server (Vite, Next, …) may call the dev gateway.
      corsOrigins: LOCALHOST_ORIGINS,
      // Fine-tuning jobs are followed closely: the dev trainer takes seconds.
      fineTuning: { pollMs: DEV_FINE_TUNING_POLL_MS },
      ...(logger ? { logger } : { log }),
    })
    stops.push(() => gateway.close())
    const more = await Promise.all(
      Array.from({ length: instances - 1 }, (_, i) =>
        spawnGatewayInstance({
          info: devnet.info,
          walletKey: anvilPrivateKey(DEV_WALLET_INDEX),
          dataDir: join(options.dataDir, `gateway-${i + 2}`),
          store,
          adminKey,
          // The dev key is a configured key there: `serve` has no dev mode.
          apiKeys: [devKey],
          args: [
            ...DEV_MODEL_ALIASES.flatMap(([alias, target]) => ['--model-alias', `${alias}=${target}`]),
            ...LOCALHOST_ORIGINS.flatMap((origin) => ['--cors-origin', origin]),
            '--fine-tuning-poll',
            String(DEV_FINE_TUNING_POLL_MS / 1000),
          ],
        }),
      ),
    )
    for (const instance of more) stops.push(() => instance.stop())
    let url = gateway.url
    if (more.length) {
      const upstreams = [gateway.url, ...more.map((m) => m.url)]
      const front = await startRoundRobin({ upstreams: () => upstreams, port: options.port ?? 8080 })
      stops.push(() => front.close())
      url = front.url
      log(`gateway instances: ${upstreams.join(', ')}, round-robin at ${front.url}`)
    }
    log(
      `dev wallet ${walletAccount.address}: ledger funded, sub-accounts with ${nodes.length} providers (${formatEther(parseEther('10'))} 0G each at first)`,
    )
    return {
      devnet,
      backend,
      nodes,
      fineTuning,
      gateway,
      url,
      instances: more,
      store: gateway.stores,
      devKey,
      adminKey,
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}
