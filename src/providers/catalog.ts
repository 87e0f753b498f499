import type { Agent } from 'undici'
import { type AbiEvent, type Address, getAddress, zeroAddress } from 'viem'
import { inferenceServingAbi } from '../chain/abi/inference-serving.ts'
import { getAllServices } from '../chain/actions/get-all-services.ts'
import type { Service } from '../chain/actions/get-service.ts'
import type { ZgClients } from '../chain/clients.ts'
import { type AdditionalInfo, parseAdditionalInfo } from './additional-info.ts'
import { createProviderAgent } from './provider-agent.ts'
import { fetchProviderModels } from './provider-models.ts'
import { SERVED_SERVICE_TYPES } from './service-types.ts'
import { checkProviderUrl, UnsafeProviderUrlError } from './url-safety.ts'

/** One usable provider service: acknowledged on-chain, with a URL that passed the safety check. */
export type CatalogEntry = {
  provider: Address
  serviceType: string
  /** The service URL, normalised by checkProviderUrl, without a trailing slash: append `/v1/proxy/...`. */
  url: string
  /** The model registered on-chain (the provider's default). */
  model: string
  /** `model`, the ids listed by the provider's /v1/models, and additionalInfo.MultiModel ids; no duplicates. */
  models: readonly string[]
  /** Neuron per token (or per unit, by service type). */
  inputPrice: bigint
  outputPrice: bigint
  verifiability: string
  teeSignerAddress: Address
  teeSignerAcknowledged: boolean
  additionalInfo: AdditionalInfo
  /** Chain time (unix seconds) of the service's last registration or update. */
  updatedAt: bigint
  /** The last /v1/models fetch worked (always true when fetching is disabled). */
  healthy: boolean
}

/** A registered service the catalog does not list, and why. */
export type ExcludedService = { provider: Address; url: string; reason: string }

export type ProviderCatalogOptions = {
  /** Only reads; no wallet needed. */
  clients: Pick<ZgClients, 'network' | 'publicClient'>
  /** Accept provider URLs on loopback and private addresses (the devnet). Default false. */
  allowPrivateUrls?: boolean
  /**
   * The service types listed (default: those the gateway has an endpoint for). Brokers register others
   * (`video-generation`, types yet to come): those are left out, like any other unusable service, never an error.
   */
  serviceTypes?: ReadonlySet<string>
  /** Full reload period, including each provider's /v1/models. Default 60 s. */
  refreshIntervalMs?: number
  /** Enrich entries from {url}/v1/models. Default true. */
  fetchModels?: boolean
  /** Budget for one provider's /v1/models. Default 2 s. */
  modelsTimeoutMs?: number
  /** How often the chain is polled for service events. Default 1 s. */
  eventPollIntervalMs?: number
  /** A burst of events (one block, or several in a row) causes one reload this long after the first. Default 200 ms. */
  eventDebounceMs?: number
  log?: (line: string) => void
  now?: () => number
}

/** Reading the services from the chain failed; the catalog keeps serving what it had. */
export class CatalogRefreshError extends Error {
  override name = 'CatalogRefreshError'
}

/** The events after which the catalog is stale: a service added, changed or removed, or its signer acknowledged. */
const WATCHED_EVENTS = inferenceServingAbi.filter(
  (item): item is Extract<(typeof inferenceServingAbi)[number], { type: 'event' }> =>
    item.type === 'event' &&
    (item.name === 'ServiceUpdated' || item.name === 'ServiceRemoved' || item.name === 'ProviderTEESignerAcknowledged'),
) as readonly AbiEvent[]

/**
 * Past this many blocks of backlog (after an outage, or a slow poll on a fast chain) the catalog reloads instead of
 * asking for the logs: a reload reads the current state, which is all the logs would lead to, and RPC nodes cap
 * the range of eth_getLogs.
 */
const MAX_LOG_RANGE = 1_000n
/** Parallel DNS checks and /v1/models fetches during a reload. */
const CONCURRENCY = 16

const NONE: readonly CatalogEntry[] = []

/** The last /v1/models answer of a provider, and what it was asked for (base URL and on-chain model). */
type ModelsState = { url: string; model: string; ids: readonly string[]; healthy: boolean }

/**
 * The inference services registered on the 0G InferenceServing contract that the gateway may route to, kept fresh:
 * a full reload every `refreshIntervalMs`, and a reload shortly after any ServiceUpdated, ServiceRemoved or
 * ProviderTEESignerAcknowledged event (polled with eth_getLogs, which every RPC supports, unlike filters).
 *
 * Listed: services of a type the gateway serves, whose TEE signer is set and acknowledged by the contract owner (the
 * SDK's default listing, and what settlement requires), whose URL passes checkProviderUrl. Every other service is
 * left out with its reason, logged once per service (and again only if the reason changes). A chain outage keeps
 * the last good catalog.
 */
export class ProviderCatalog {
  readonly #clients: Pick<ZgClients, 'network' | 'publicClient'>
  readonly #allowPrivate: boolean
  readonly #serviceTypes: ReadonlySet<string>
  readonly #refreshIntervalMs: number
  readonly #fetchModels: boolean
  readonly #modelsTimeoutMs: number
  readonly #eventPollIntervalMs: number
  readonly #eventDebounceMs: number
  readonly #log: (line: string) => void
  readonly #now: () => number

  #entries = new Map<string, CatalogEntry>()
  /** The entries by model id, in the order of #entries; built on demand. */
  #byModel: Map<string, CatalogEntry[]> | undefined
  #excluded = new Map<string, ExcludedService>()
  #modelsState = new Map<string, ModelsState>()
  #lastRefreshAt: number | undefined
  #lastRefreshError: Error | undefined

  #agent: Agent | undefined
  #started = false
  #cursor: bigint | undefined
  #refreshTimer: NodeJS.Timeout | undefined
  #pollTimer: NodeJS.Timeout | undefined
  #debounceTimer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #queued: { full: boolean; promise: Promise<void> } | undefined
  #polling: Promise<void> | undefined
  #refreshFailing = false
  #watchFailing = false

  constructor(opts: ProviderCatalogOptions) {
    this.#clients = opts.clients
    this.#allowPrivate = opts.allowPrivateUrls ?? false
    this.#serviceTypes = opts.serviceTypes ?? SERVED_SERVICE_TYPES
    this.#refreshIntervalMs = opts.refreshIntervalMs ?? 60_000
    this.#fetchModels = opts.fetchModels ?? true
    this.#modelsTimeoutMs = opts.modelsTimeoutMs ?? 2_000
    this.#eventPollIntervalMs = opts.eventPollIntervalMs ?? 1_000
    this.#eventDebounceMs = opts.eventDebounceMs ?? 200
    this.#log = opts.log ?? (() => {})
    this.#now = opts.now ?? Date.now
  }

  /** When the last successful reload finished (per `now`), or undefined before the first. */
  get lastRefreshAt(): number | undefined {
    return this.#lastRefreshAt
  }

  /** Why the latest reload failed; undefined once one succeeds again. */
  /** The block up to which the catalog has seen every service change (its event cursor). */
  get syncedBlock(): bigint | undefined {
    return this.#cursor
  }

  get lastRefreshError(): Error | undefined {
    return this.#lastRefreshError
  }

  /**
   * Loads the catalog, then keeps it fresh until stop(). Rejects (and starts nothing) when the first load fails:
   * with nothing to serve, failing loudly at boot beats a gateway that silently routes nowhere.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('the provider catalog is already started')
    this.#started = true
    try {
      // The event cursor is taken before the first read, so a change that lands while we page is seen by the
      // watcher (at worst it costs one extra reload).
      this.#cursor = await this.#clients.publicClient.getBlockNumber({ cacheTime: 0 })
      await this.refresh()
    } catch (err) {
      await this.stop()
      if (err instanceof CatalogRefreshError) throw err
      this.#lastRefreshError = this.#refreshError(err)
      throw this.#lastRefreshError
    }
    this.#scheduleRefresh()
    this.#schedulePoll()
  }

  /** Stops the refresh loop and the event watch, waits for a reload in flight, and closes provider connections. */
  async stop(): Promise<void> {
    this.#started = false
    clearTimeout(this.#refreshTimer)
    clearTimeout(this.#pollTimer)
    clearTimeout(this.#debounceTimer)
    this.#refreshTimer = this.#pollTimer = this.#debounceTimer = undefined
    await Promise.allSettled([this.#running, this.#queued?.promise, this.#polling])
    const agent = this.#agent
    this.#agent = undefined
    await agent?.close()
  }

  /**
   * Reloads every service from the chain and every provider's /v1/models. When the chain cannot be read, the
   * previous catalog stays in place, `lastRefreshError` says why, and this rejects with a CatalogRefreshError.
   * Calls during a reload are coalesced into one more reload after it (it may have read the chain too early).
   */
  refresh(): Promise<void> {
    return this.#request(true)
  }

  /** Every listed service, ordered by provider address. */
  entries(): CatalogEntry[] {
    return [...this.#entries.values()]
  }

  byProvider(address: Address | string): CatalogEntry | undefined {
    return this.#entries.get(address.toLowerCase())
  }

  /** The listed services that serve `model` (by exact id), ordered by provider address; ranking is the router's. */
  candidates(model: string, opts: { serviceType?: string } = {}): readonly CatalogEntry[] {
    if (opts.serviceType !== undefined) {
      return this.entries().filter((e) => e.models.includes(model) && e.serviceType === opts.serviceType)
    }
    // Every call asks this: indexed once per catalog rather than filtered per call.
    if (!this.#byModel) {
      this.#byModel = new Map()
      for (const entry of this.#entries.values()) {
        // An entry's models have no duplicates (see CatalogEntry).
        for (const id of entry.models) {
          const list = this.#byModel.get(id)
          if (list) list.push(entry)
          else this.#byModel.set(id, [entry])
        }
      }
    }
    return this.#byModel.get(model) ?? NONE
  }

  /**
   * Every model id served by at least one listed service, sorted by id, with its providers. The service type is
   * that of the services that registered the id on-chain (the first, by address, if they disagree), else that of
   * the first provider listing it.
   */
  models(): Array<{ id: string; serviceType: string; providers: CatalogEntry[] }> {
    const byId = new Map<string, CatalogEntry[]>()
    for (const entry of this.#entries.values()) {
      for (const id of entry.models) {
        const list = byId.get(id)
        if (list) list.push(entry)
        else byId.set(id, [entry])
      }
    }
    return [...byId.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, providers]) => {
        const declared = providers.find((p) => p.model === id) ?? providers[0]!
        return { id, serviceType: declared.serviceType, providers }
      })
  }

  /** Registered services the catalog leaves out, and why (unacknowledged signer, unsafe URL, ...), by address. */
  excluded(): ExcludedService[] {
    return [...this.#excluded.values()]
  }

  #request(full: boolean): Promise<void> {
    if (!this.#running) {
      const run = this.#reload(full).finally(() => {
        if (this.#running === run) this.#running = undefined
      })
      this.#running = run
      return run
    }
    if (this.#queued) {
      this.#queued.full ||= full
      return this.#queued.promise
    }
    const queued: { full: boolean; promise: Promise<void> } = { full, promise: Promise.resolve() }
    queued.promise = this.#running
      .catch(() => {})
      .then(() => {
        if (this.#queued === queued) this.#queued = undefined
        return this.#request(queued.full)
      })
    this.#queued = queued
    return queued.promise
  }

  /** `full`: refetch every provider's /v1/models; otherwise only those whose URL or on-chain model changed. */
  async #reload(full: boolean): Promise<void> {
    let services: Service[]
    try {
      services = await getAllServices(this.#clients)
    } catch (err) {
      const error = this.#refreshError(err)
      this.#lastRefreshError = error
      if (!this.#refreshFailing) {
        this.#refreshFailing = true
        const since = this.#lastRefreshAt === undefined ? 'nothing loaded yet' : `loaded ${this.#age()} ago`
        this.#log(
          `provider catalog: ${error.message}; serving the last good catalog (${this.#entries.size} providers, ${since}) until the chain answers again`,
        )
      }
      throw error
    }

    if (this.#fetchModels && !this.#agent) this.#agent = createProviderAgent({ allowPrivate: this.#allowPrivate })
    const agent = this.#agent
    const results = await mapLimit(services, CONCURRENCY, (s) => this.#admit(s, full, agent))

    const entries = new Map<string, CatalogEntry>()
    const excluded = new Map<string, ExcludedService>()
    const modelsState = new Map<string, ModelsState>()
    for (const r of results) {
      const key = r.provider.toLowerCase()
      if ('reason' in r) {
        excluded.set(key, r)
        const before = this.#excluded.get(key)
        if (before?.reason !== r.reason) this.#log(`provider catalog: leaving out ${r.provider}: ${r.reason}`)
        continue
      }
      entries.set(key, r.entry)
      if (r.models) modelsState.set(key, r.models)
    }
    for (const [key, entry] of entries) {
      if (this.#excluded.has(key) && !this.#entries.has(key))
        this.#log(`provider catalog: now listing ${entry.provider}`)
    }
    for (const [key, entry] of this.#entries) {
      if (!entries.has(key) && !excluded.has(key)) this.#log(`provider catalog: ${entry.provider} removed its service`)
    }
    this.#entries = sortedByKey(entries)
    this.#byModel = undefined
    this.#excluded = sortedByKey(excluded)
    this.#modelsState = modelsState
    this.#lastRefreshAt = this.#now()
    this.#lastRefreshError = undefined
    if (this.#refreshFailing) {
      this.#refreshFailing = false
      this.#log(`provider catalog: the chain answers again; ${entries.size} providers listed`)
    }
  }

  /** Decides whether a service is listed, and builds its entry. */
  async #admit(
    service: Service,
    full: boolean,
    agent: Agent | undefined,
  ): Promise<ExcludedService | { provider: Address; entry: CatalogEntry; models?: ModelsState }> {
    const provider = getAddress(service.provider)
    const refuse = (reason: string) => ({ provider, url: service.url, reason })
    // SDK 0.9.0 throws "Unknown service type" on the newer ones and fails the whole listing; one service is skipped here.
    if (!this.#serviceTypes.has(service.serviceType)) {
      return refuse(`service type ${JSON.stringify(service.serviceType.slice(0, 64))} is not served by this gateway`)
    }
    if (service.teeSignerAddress === zeroAddress) return refuse('no TEE signer address registered')
    if (!service.teeSignerAcknowledged) return refuse('TEE signer not acknowledged by the contract owner')
    let url: URL
    try {
      url = await checkProviderUrl(service.url, { allowPrivate: this.#allowPrivate })
    } catch (err) {
      if (err instanceof UnsafeProviderUrlError) return refuse(err.reason)
      throw err
    }
    const base = url.href.replace(/\/+$/, '')
    const additionalInfo = parseAdditionalInfo(service.additionalInfo)
    const models = agent ? await this.#models(provider, url, base, service.model, full, agent) : undefined
    const multi = Array.isArray(additionalInfo.MultiModel) ? additionalInfo.MultiModel : []
    const entry: CatalogEntry = {
      provider,
      serviceType: service.serviceType,
      url: base,
      model: service.model,
      models: Object.freeze([...new Set([service.model, ...multi, ...(models?.ids ?? [])].filter((m) => m !== ''))]),
      inputPrice: service.inputPrice,
      outputPrice: service.outputPrice,
      verifiability: service.verifiability,
      teeSignerAddress: getAddress(service.teeSignerAddress),
      teeSignerAcknowledged: service.teeSignerAcknowledged,
      additionalInfo,
      updatedAt: service.updatedAt,
      healthy: models?.healthy ?? true,
    }
    return { provider, entry: Object.freeze(entry), models }
  }

  /**
   * The provider's /v1/models ids. An event-driven reload reuses the last answer unless the URL or the on-chain
   * model changed, so a price change does not make the gateway call every provider; the periodic reload asks all.
   */
  async #models(
    provider: Address,
    url: URL,
    base: string,
    model: string,
    full: boolean,
    agent: Agent,
  ): Promise<ModelsState> {
    const key = provider.toLowerCase()
    const before = this.#modelsState.get(key)
    const sameUrl = before?.url === base
    if (!full && before && sameUrl && before.model === model) return before
    try {
      const ids = await fetchProviderModels(url, { dispatcher: agent, timeoutMs: this.#modelsTimeoutMs })
      if (before && !before.healthy) this.#log(`provider catalog: ${provider} answers /v1/models again`)
      return { url: base, model, ids, healthy: true }
    } catch (err) {
      if (!before || before.healthy || !sameUrl) {
        this.#log(`provider catalog: ${provider} marked unhealthy: ${(err as Error).message}`)
      }
      // A blip must not take a multi-model provider's other models out of routing: keep the ids it last listed.
      return { url: base, model, ids: sameUrl ? before.ids : [], healthy: false }
    }
  }

  #scheduleRefresh(): void {
    if (!this.#started) return
    this.#refreshTimer = setTimeout(() => {
      this.#request(true)
        .catch(() => {}) // recorded in lastRefreshError and logged once by #reload
        .finally(() => this.#scheduleRefresh())
    }, this.#refreshIntervalMs)
    this.#refreshTimer.unref()
  }

  #schedulePoll(): void {
    if (!this.#started) return
    this.#pollTimer = setTimeout(() => {
      this.#polling = this.#pollEvents().finally(() => {
        this.#polling = undefined
        this.#schedulePoll()
      })
    }, this.#eventPollIntervalMs)
    this.#pollTimer.unref()
  }

  /** One look at the chain for new service events since the cursor; any of them schedules a reload. */
  async #pollEvents(): Promise<void> {
    const client = this.#clients.publicClient
    try {
      const latest = await client.getBlockNumber({ cacheTime: 0 })
      const cursor = this.#cursor
      if (cursor === undefined || latest < cursor || latest - cursor > MAX_LOG_RANGE) {
        // First look, a chain that went backwards (reorg, a reset devnet), or too long a gap: reload, skip ahead.
        this.#cursor = latest
        if (cursor !== undefined) this.#soon()
      } else if (latest > cursor) {
        const logs = await client.getLogs({
          address: this.#clients.network.contracts.inference,
          events: WATCHED_EVENTS,
          fromBlock: cursor + 1n,
          toBlock: latest,
        })
        this.#cursor = latest
        if (logs.length > 0) this.#soon()
      }
      if (this.#watchFailing) {
        this.#watchFailing = false
        this.#log('provider catalog: watching service events again')
      }
    } catch (err) {
      if (!this.#watchFailing) {
        this.#watchFailing = true
        this.#log(`provider catalog: could not poll service events (will retry): ${firstLine(err)}`)
      }
    }
  }

  /** A reload after the debounce delay; further events before it fires ride along. */
  #soon(): void {
    if (this.#debounceTimer || !this.#started) return
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined
      this.#request(false).catch(() => {})
    }, this.#eventDebounceMs)
    this.#debounceTimer.unref()
  }

  #refreshError(err: unknown): CatalogRefreshError {
    const { name, rpcUrl } = this.#clients.network
    return new CatalogRefreshError(`could not read the services from ${name} (${origin(rpcUrl)}): ${firstLine(err)}`, {
      cause: err,
    })
  }

  #age(): string {
    const ms = this.#now() - (this.#lastRefreshAt ?? 0)
    return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`
  }
}

/** Only scheme, host and port: hosted RPC URLs often carry an API key in the path or query, and this goes to logs. */
function origin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'an invalid RPC URL'
  }
}

/** viem messages run to many lines (request body, docs link); the first says what happened. */
function firstLine(err: unknown): string {
  const e = err as { shortMessage?: string; message?: string }
  return (e?.shortMessage ?? e?.message ?? String(err)).split('\n')[0]!
}

function sortedByKey<V>(map: Map<string, V>): Map<string, V> {
  return new Map([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
