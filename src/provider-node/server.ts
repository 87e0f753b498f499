import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Agent } from 'undici'
import type { Address } from 'viem'
import type { TeeSigner } from '../attestation/tee-signer.ts'
import { DEFAULT_MAX_OUTPUT_TOKENS } from '../billing/worst-case-fee.ts'
import type { ZgWalletClients } from '../chain/clients.ts'
import { listenApp } from '../http/listen.ts'
import { type Logger, lineLogger } from '../observability/logger.ts'
import { ProviderNodeObservability } from '../observability/provider-node.ts'
import { connectPostgres, isPostgresUrl, redactUrl } from '../store/postgres/connect.ts'
import { migrate } from '../store/postgres/migrate.ts'
import { AdapterRegistry } from './adapters.ts'
import { Admission } from './admission.ts'
import { createProviderApp } from './app.ts'
import { BackendPool } from './backends.ts'
import { ChainView } from './chain-view.ts'
import { ContextLengths } from './context-lengths.ts'
import { PostgresUsageStore } from './postgres-usage-store.ts'
import { type SettlementOutcome, settle } from './settlement.ts'
import { SqliteUsageStore, type UsageStore } from './usage-store.ts'

export type ProviderNodeOptions = {
  /** The provider's wallet on the network its service is registered on. */
  clients: ZgWalletClients
  /**
   * The OpenAI-compatible backend (vLLM, …), without /v1; or several replicas of it, which the node spreads its
   * calls over, checking their health (src/provider-node/backends.ts).
   */
  backendUrl: string | readonly string[]
  backendApiKey?: string
  /** With several backends: how often each one's health is checked (default 5 s). */
  backendHealthIntervalMs?: number
  /** With several backends: how long one health check may take (default 2 s). */
  backendHealthTimeoutMs?: number
  signer: TeeSigner
  /** Where the usage database lives (usage.sqlite), unless `store` names Postgres. */
  dataDir: string
  /**
   * `postgres://…`: the usage store is shared by every node of this provider on that database (migrated on start),
   * and settlement runs on one of them at a time. Unset: SQLite in `dataDir`, for this node alone.
   */
  store?: string
  /** Postgres store: how long admission trusts a user's unsettled sum read from the database (default 500 ms). */
  unsettledTtlMs?: number
  host?: string
  /** 0 picks a free port. */
  port?: number
  /** Balance a sub-account must keep beyond what it owes (default 1 0G). */
  reserve?: bigint
  /** How long a user's sub-account read from chain is trusted (default 5 s): revocations take effect within it. */
  accountCacheTtlMs?: number
  /** How long its own service read from chain is trusted (default 10 s): a price change or removal takes effect within it. */
  serviceCacheTtlMs?: number
  /** The longest a request waits on a chain read (default 2 s); past it, the last known state serves. */
  chainReadBudgetMs?: number
  /** How old the last known state may be and still admit calls while the chain cannot be read (default 10 min). */
  maxStaleMs?: number
  /** Most worst-case fees admitted per user on a stale sub-account read (default: the reserve); past it, 503. */
  staleRiskLimit?: bigint
  /**
   * The output cap of a chat call that states none, when the backend reports no context length for its model
   * (vLLM's /v1/models does): held on admission and sent as max_tokens, so the call cannot be billed more than was
   * held (default 4096 tokens). With a context length known, such a call is held to it and sent unchanged.
   */
  defaultMaxTokens?: number
  /** Largest fine-tuned adapter archive a user may deploy (default 1 GiB); adapters live in `dataDir`/adapters. */
  adapterLimit?: number
  /** How long response signatures are served (default 1 h). */
  signatureTtlMs?: number
  /** How often the settlement job runs; 0 turns it off (default 10 min). */
  settleIntervalMs?: number
  jsonBodyLimit?: number
  uploadLimit?: number
  headersTimeoutMs?: number
  /** Where request lines and messages go (src/observability/logger.ts); without one, messages go to `log`. */
  logger?: Logger
  /** Its /metrics answers any client, not only loopback ones (`--metrics-public`). */
  metricsPublic?: boolean
  log?: (line: string) => void
  /**
   * TEST ONLY, never a CLI flag: neuron added to the fee of every call the node records (and so settles), to make
   * an over-charging provider for the reconciliation tests.
   */
  testExtraFeePerCall?: bigint
  /** TEST ONLY, never a CLI flag: sign other bytes than the ones sent, to make a provider whose answers are disputed. */
  testSignOtherBytes?: boolean
}

export type ProviderNode<S extends UsageStore = SqliteUsageStore> = {
  url: string
  port: number
  store: S
  /** Where the calls go. */
  backends: BackendPool
  signer: TeeSigner
  /** Runs the settlement job now (never two at once; on a shared store, skipped while another node settles). */
  settle(): Promise<SettlementOutcome[]>
  close(): Promise<void>
}

/** The node `options` start: its store is the SQLite one (synchronous) unless they may name a Postgres store. */
export type ProviderNodeOf<O extends ProviderNodeOptions> = ProviderNode<
  O extends { store: infer S } ? ([S] extends [undefined] ? SqliteUsageStore : UsageStore) : SqliteUsageStore
>

/**
 * Opens the usage store `store` names (`postgres://…`: shared by every node of `provider`, its schema brought up to
 * date first), or SQLite in `dataDir`. `close()` closes the store and its pool.
 */
export async function openUsageStore(params: {
  store?: string
  dataDir: string
  provider: Address
  unsettledTtlMs?: number
  log: (line: string) => void
}): Promise<{ store: UsageStore; close(): Promise<void> }> {
  if (params.store === undefined || params.store === '') {
    const store = new SqliteUsageStore(join(params.dataDir, 'usage.sqlite'), {
      onCheckpointError: (err) =>
        params.log(`provider node: ${err.message} (commits checkpoint by themselves meanwhile)`),
    })
    return { store, close: async () => store.close() }
  }
  const where = redactUrl(params.store)
  if (!isPostgresUrl(params.store))
    throw new Error(`--store takes a postgres:// URL (SQLite, the default, needs none); got ${where}`)
  const sql = connectPostgres(params.store, { applicationName: 'zg-gateway provider-node' })
  try {
    await migrate(sql)
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {})
    throw new Error(`the store at ${where} could not be opened: ${(err as Error).message}`)
  }
  const store = new PostgresUsageStore(sql, { provider: params.provider, unsettledTtlMs: params.unsettledTtlMs })
  return { store, close: () => sql.end({ timeout: 5 }) }
}

/** Starts a provider node: the 0G provider protocol in front of an OpenAI-compatible backend. */
export async function startProviderNode<O extends ProviderNodeOptions>(options: O): Promise<ProviderNodeOf<O>> {
  const log = options.log ?? (options.logger ? lineLogger(options.logger) : (line: string) => console.error(line))
  const opened = await openUsageStore({
    store: options.store,
    dataDir: options.dataDir,
    provider: options.clients.walletClient.account.address,
    unsettledTtlMs: options.unsettledTtlMs,
    log,
  })
  const { store } = opened
  const chain = new ChainView({
    clients: options.clients,
    provider: options.clients.walletClient.account.address,
    accountTtlMs: options.accountCacheTtlMs,
    serviceTtlMs: options.serviceCacheTtlMs,
    readBudgetMs: options.chainReadBudgetMs,
    maxStaleMs: options.maxStaleMs,
  })
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256 })
  // What users owe and the chain has not yet settled, for /metrics (whose sources answer at once): read at scrape
  // time from SQLite; from Postgres, the last read, a new one started by each scrape.
  let unsettled = 0n
  const readUnsettled = () => {
    const total = store.unsettledTotal()
    if (typeof total === 'bigint') return total
    total.then(
      (t) => {
        unsettled = t
      },
      (err: Error) => log(`provider node: reading the unsettled total failed: ${err.message}`),
    )
    return unsettled
  }
  const backends = new BackendPool({
    urls: typeof options.backendUrl === 'string' ? [options.backendUrl] : options.backendUrl,
    apiKey: options.backendApiKey,
    healthIntervalMs: options.backendHealthIntervalMs,
    healthTimeoutMs: options.backendHealthTimeoutMs,
    log,
  })
  const observability = new ProviderNodeObservability({
    logger: options.logger,
    sources: { unsettled: readUnsettled, backends: () => backends.states() },
  })
  const adapters = new AdapterRegistry({
    dir: join(options.dataDir, 'adapters'),
    backends,
    backendApiKey: options.backendApiKey,
    dispatcher,
    log,
  })
  await adapters.restore()
  const app = createProviderApp({
    backends,
    adapters,
    adapterLimit: options.adapterLimit,
    backendApiKey: options.backendApiKey,
    dispatcher,
    chain,
    admission: new Admission({ chain, store, reserve: options.reserve, staleRiskLimit: options.staleRiskLimit }),
    store,
    signer: options.signer,
    jsonBodyLimit: options.jsonBodyLimit ?? 16 * 1024 * 1024,
    uploadLimit: options.uploadLimit ?? 25 * 1024 * 1024,
    headersTimeoutMs: options.headersTimeoutMs ?? 300_000,
    contexts: new ContextLengths({ backendUrl: backends.primary, apiKey: options.backendApiKey, dispatcher }),
    defaultMaxTokens:
      options.defaultMaxTokens !== undefined ? BigInt(options.defaultMaxTokens) : DEFAULT_MAX_OUTPUT_TOKENS,
    log,
    observability,
    metricsPublic: options.metricsPublic,
    testExtraFeePerCall: options.testExtraFeePerCall,
    testSignOtherBytes: options.testSignOtherBytes,
  })
  const server = await listenApp(app.fetch, {
    hostname: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    what: 'the provider node',
  })
  const { port, address } = server.address() as AddressInfo

  let running: Promise<SettlementOutcome[]> | undefined
  const settleNow = () => {
    running ??= settle({ clients: options.clients, store, signer: options.signer, log })
      .then(
        (outcomes) => {
          observability.settled(outcomes)
          return outcomes
        },
        (err: Error) => {
          observability.settled(err)
          throw err
        },
      )
      .finally(() => {
        running = undefined
      })
    return running
  }
  const ttl = options.signatureTtlMs ?? 3_600_000
  const prune = setInterval(
    () => {
      Promise.resolve()
        .then(() => store.pruneSignatures(Date.now() - ttl))
        .catch((err: Error) => log(`provider node: pruning signatures failed: ${err.message}`))
    },
    Math.min(ttl, 60_000),
  )
  prune.unref()
  const interval = options.settleIntervalMs ?? 600_000
  const settler =
    interval > 0
      ? setInterval(() => {
          settleNow().catch((err) => log(`settlement failed: ${(err as Error).message}`))
        }, interval)
      : undefined
  settler?.unref()

  const node: ProviderNode<UsageStore> = {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    store,
    backends,
    signer: options.signer,
    settle: settleNow,
    async close() {
      clearInterval(prune)
      if (settler) clearInterval(settler)
      await running?.catch(() => undefined)
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
      })
      backends.close()
      await dispatcher.close()
      await opened.close()
    },
  }
  // The store is the SQLite one exactly when `options` named none (openStore).
  return node as ProviderNodeOf<O>
}
