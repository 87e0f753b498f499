import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Agent } from 'undici'
import type { TeeSigner } from '../attestation/tee-signer.ts'
import { DEFAULT_MAX_OUTPUT_TOKENS } from '../billing/worst-case-fee.ts'
import type { ZgWalletClients } from '../chain/clients.ts'
import { listenApp } from '../http/listen.ts'
import { type Logger, lineLogger } from '../observability/logger.ts'
import { ProviderNodeObservability } from '../observability/provider-node.ts'
import { Admission } from './admission.ts'
import { createProviderApp } from './app.ts'
import { ChainView } from './chain-view.ts'
import { ContextLengths } from './context-lengths.ts'
import { type SettlementOutcome, settle } from './settlement.ts'
import { UsageStore } from './usage-store.ts'

export type ProviderNodeOptions = {
  /** The provider's wallet on the network its service is registered on. */
  clients: ZgWalletClients
  /** The OpenAI-compatible backend (vLLM, …), without /v1. */
  backendUrl: string
  backendApiKey?: string
  signer: TeeSigner
  /** Where the usage database lives (usage.sqlite). */
  dataDir: string
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

export type ProviderNode = {
  url: string
  port: number
  store: UsageStore
  signer: TeeSigner
  /** Runs the settlement job now (never two at once). */
  settle(): Promise<SettlementOutcome[]>
  close(): Promise<void>
}

/** Starts a provider node: the 0G provider protocol in front of an OpenAI-compatible backend. */
export async function startProviderNode(options: ProviderNodeOptions): Promise<ProviderNode> {
  const log = options.log ?? (options.logger ? lineLogger(options.logger) : (line: string) => console.error(line))
  const store = new UsageStore(join(options.dataDir, 'usage.sqlite'), {
    onCheckpointError: (err) => log(`provider node: ${err.message} (commits checkpoint by themselves meanwhile)`),
  })
  const chain = new ChainView({
    clients: options.clients,
    provider: options.clients.walletClient.account.address,
    accountTtlMs: options.accountCacheTtlMs,
    serviceTtlMs: options.serviceCacheTtlMs,
    readBudgetMs: options.chainReadBudgetMs,
    maxStaleMs: options.maxStaleMs,
  })
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256 })
  const observability = new ProviderNodeObservability({
    logger: options.logger,
    // Read at scrape time from the usage store: what users owe and the chain has not yet settled.
    sources: { unsettled: () => store.usersWithUnsettled().reduce((sum, user) => sum + store.unsettledFee(user), 0n) },
  })
  const backendUrl = options.backendUrl.replace(/\/+$/, '').replace(/\/v1$/, '')
  const app = createProviderApp({
    backendUrl,
    backendApiKey: options.backendApiKey,
    dispatcher,
    chain,
    admission: new Admission({ chain, store, reserve: options.reserve, staleRiskLimit: options.staleRiskLimit }),
    store,
    signer: options.signer,
    jsonBodyLimit: options.jsonBodyLimit ?? 16 * 1024 * 1024,
    uploadLimit: options.uploadLimit ?? 25 * 1024 * 1024,
    headersTimeoutMs: options.headersTimeoutMs ?? 300_000,
    contexts: new ContextLengths({ backendUrl, apiKey: options.backendApiKey, dispatcher }),
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
  const prune = setInterval(() => store.pruneSignatures(Date.now() - ttl), Math.min(ttl, 60_000))
  prune.unref()
  const interval = options.settleIntervalMs ?? 600_000
  const settler =
    interval > 0
      ? setInterval(() => {
          settleNow().catch((err) => log(`settlement failed: ${(err as Error).message}`))
        }, interval)
      : undefined
  settler?.unref()

  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    store,
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
      await dispatcher.close()
      store.close()
    },
  }
}
