import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { RequestObservation } from './request-log.ts'

/**
 * Prometheus metrics, one registry per gateway or provider node (never prom-client's global one: several instances
 * in one process, as in the tests, must not share or clash). Names follow the OpenTelemetry GenAI semantic
 * conventions in their Prometheus form where one exists (gen_ai_*), the rest are ours (zg_*). docs/operations.md
 * lists them with their meaning.
 *
 * Nothing is observed per streamed chunk: the relay keeps a stream's chunk count, first and last arrival and
 * longest gap in its request's observation, and each request is observed once, when it is over (a handful of
 * observations, off the request path: see the gateway's OffPathQueue). Gauges of state (breakers, escrow) are read
 * at scrape time from what the gateway already holds in memory, never from the chain.
 */

/** OTel's advisory buckets for gen_ai.server.request.duration, seconds. */
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
/** OTel's advisory buckets for gen_ai.server.time_to_first_token, seconds. */
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
/** OTel's advisory buckets for gen_ai.server.time_per_output_token, seconds. */
const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5]
/** OTel's advisory buckets for gen_ai.client.token.usage. */
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
/** The gateway's own time: tenths of a millisecond to a second. */
const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
/** Gaps between a stream's chunks and commit lags: a millisecond to a minute. */
const GAP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** Distinct model label values kept before the rest read `other`: clients may name any model they like. */
const MAX_MODELS = 100

/** OTel's gen_ai.operation.name for each endpoint. */
const OPERATIONS: Record<string, string> = {
  'chat/completions': 'chat',
  completions: 'text_completion',
  embeddings: 'embeddings',
}

/**
 * A counter of neuron, summed as bigint and handed to Prometheus as a float at scrape time: per-call fees are
 * exact integers, and a float running sum would drift; the float sample itself is exact up to 2^53 neuron
 * (0.009 0G) and keeps 15-16 significant digits past it.
 */
class NeuronCounter {
  readonly #totals = new Map<string, { labels: Record<string, string>; total: bigint }>()

  constructor(registry: Registry, name: string, help: string, labelNames: string[]) {
    const totals = this.#totals
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset()
        for (const { labels, total } of totals.values()) this.inc(labels, Number(total))
      },
    })
  }

  add(key: string, labels: Record<string, string>, amount: bigint): void {
    const entry = this.#totals.get(key)
    if (entry) entry.total += amount
    else this.#totals.set(key, { labels, total: amount })
  }
}

/** Model names as label values: the first MAX_MODELS seen, then `other`. */
class ModelLabels {
  readonly #seen = new Set<string>()

  of(model: string): string {
    if (this.#seen.has(model)) return model
    if (this.#seen.size >= MAX_MODELS) return 'other'
    this.#seen.add(model)
    return model
  }
}

export type GatewayMetricsSources = {
  /** Every provider the gateway knows and its circuit (`closed`, `open`, `half-open`). */
  breakers?: () => Iterable<{ provider: string; state: string }>
  /** The escrow policy's last known view of each sub-account (no chain read). */
  escrow?: () => Iterable<{ provider: string; balance: bigint | null; unsettled: bigint; credit: bigint }>
}

const BREAKER_STATES = ['closed', 'open', 'half-open'] as const

/** The gateway's metrics (GET /metrics). */
export class GatewayMetrics {
  readonly registry = new Registry()
  #inFlight = 0
  readonly #models = new ModelLabels()
  readonly #requests: Counter
  readonly #refusals: Counter
  readonly #duration: Histogram
  readonly #firstByte: Histogram
  readonly #ttft: Histogram
  readonly #tpot: Histogram
  readonly #overhead: Histogram
  readonly #chunkInterval: Histogram
  readonly #chunkGapMax: Histogram
  readonly #tokens: Histogram
  readonly #fees: NeuronCounter
  readonly #verifications: Counter
  readonly #ledgerLag: Histogram

  constructor(sources: GatewayMetricsSources = {}) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const self = this
    new Gauge({
      name: 'zg_gateway_requests_in_flight',
      help: 'Requests the gateway is serving now (a stream until its last byte).',
      registers,
      collect() {
        this.set(self.#inFlight)
      },
    })
    this.#requests = new Counter({
      name: 'zg_gateway_requests_total',
      help: 'Requests served, by route, model, provider (the one that answered, or the last one tried) and HTTP status.',
      labelNames: ['route', 'gen_ai_request_model', 'provider', 'status'],
      registers,
    })
    this.#refusals = new Counter({
      name: 'zg_gateway_refusals_total',
      help: 'Requests answered with an error, by route and reason (auth, budget, rate_limit, verification_policy, no_provider, provider_refusal, …).',
      labelNames: ['route', 'reason'],
      registers,
    })
    this.#duration = new Histogram({
      name: 'gen_ai_server_request_duration_seconds',
      help: 'Time from a request’s arrival to its last byte (a stream’s end), seconds.',
      labelNames: ['route', 'gen_ai_request_model', 'provider', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    })
    this.#firstByte = new Histogram({
      name: 'zg_gateway_time_to_first_byte_seconds',
      help: 'Time from a request’s arrival to the first byte of a successful answer leaving for the client, seconds.',
      labelNames: ['route', 'gen_ai_request_model', 'provider'],
      buckets: TTFT_BUCKETS,
      registers,
    })
    this.#ttft = new Histogram({
      name: 'gen_ai_server_time_to_first_token_seconds',
      help: 'Streams: time from the request’s arrival to the first chunk leaving for the client, seconds.',
      labelNames: ['gen_ai_request_model', 'provider'],
      buckets: TTFT_BUCKETS,
      registers,
    })
    this.#tpot = new Histogram({
      name: 'gen_ai_server_time_per_output_token_seconds',
      help: 'Streams: time per output token after the first chunk (last − first chunk) / (output tokens − 1), seconds.',
      labelNames: ['gen_ai_request_model', 'provider'],
      buckets: TPOT_BUCKETS,
      registers,
    })
    this.#overhead = new Histogram({
      name: 'zg_gateway_overhead_seconds',
      help: 'The gateway’s own time before a successful answer’s first byte: time to first byte minus the waits on providers, seconds.',
      labelNames: ['route'],
      buckets: OVERHEAD_BUCKETS,
      registers,
    })
    this.#chunkInterval = new Histogram({
      name: 'zg_gateway_stream_chunk_interval_seconds',
      help: 'Per stream, the mean time between chunks from the provider (last − first arrival) / (chunks − 1), seconds.',
      labelNames: ['provider'],
      buckets: GAP_BUCKETS,
      registers,
    })
    this.#chunkGapMax = new Histogram({
      name: 'zg_gateway_stream_chunk_gap_max_seconds',
      help: 'Per stream, the longest silence between two chunks from the provider (or from its headers to the first chunk), seconds.',
      labelNames: ['provider'],
      buckets: GAP_BUCKETS,
      registers,
    })
    this.#tokens = new Histogram({
      name: 'gen_ai_client_token_usage',
      help: 'Tokens per call as the provider reported them (input: prompt, output: completion), for token-billed endpoints.',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model', 'provider', 'gen_ai_token_type'],
      buckets: TOKEN_BUCKETS,
      registers,
    })
    this.#fees = new NeuronCounter(
      this.registry,
      'zg_gateway_fees_neuron_total',
      'Fees recorded in the usage ledger, neuron (summed exactly as bigint, exported as a float).',
      ['gen_ai_request_model', 'provider'],
    )
    this.#verifications = new Counter({
      name: 'zg_gateway_verifications_total',
      help: 'Delivery checks by outcome (verified, unverified, disputed, unverifiable) and level reached (L0–L3, none).',
      labelNames: ['provider', 'status', 'level'],
      registers,
    })
    this.#ledgerLag = new Histogram({
      name: 'zg_gateway_ledger_commit_lag_seconds',
      help: 'Time from a call’s end to the durable commit of its usage record, seconds.',
      buckets: GAP_BUCKETS,
      registers,
    })
    if (sources.breakers) {
      const breakers = sources.breakers
      new Gauge({
        name: 'zg_gateway_provider_breaker_state',
        help: 'Each provider’s circuit breaker: 1 for its current state (closed, open, half-open), 0 for the others.',
        labelNames: ['provider', 'state'],
        registers,
        collect() {
          this.reset()
          for (const { provider, state } of breakers()) {
            for (const s of BREAKER_STATES) this.set({ provider, state: s }, s === state ? 1 : 0)
          }
        },
      })
    }
    if (sources.escrow) {
      const escrow = sources.escrow
      const gauge = (
        name: string,
        help: string,
        read: (s: { balance: bigint | null; unsettled: bigint; credit: bigint }) => bigint | null,
      ) =>
        new Gauge({
          name,
          help,
          labelNames: ['provider'],
          registers,
          collect() {
            this.reset()
            for (const s of escrow()) {
              const value = read(s)
              if (value !== null) this.set({ provider: s.provider }, Number(value))
            }
          },
        })
      gauge(
        'zg_gateway_escrow_balance_neuron',
        'The sub-account balance with each provider, as the funding policy last read it, neuron.',
        (s) => s.balance,
      )
      gauge(
        'zg_gateway_escrow_unsettled_neuron',
        'Fees each provider is owed and has not settled, as last known, neuron.',
        (s) => s.unsettled,
      )
      gauge(
        'zg_gateway_escrow_credit_neuron',
        'Verified fees not yet moved into each provider’s sub-account, neuron.',
        (s) => s.credit,
      )
    }
  }

  /** A request arrived (cheap: a number, read at scrape time). */
  started(): void {
    this.#inFlight++
  }

  /** Its last byte left, or its client went away. */
  ended(): void {
    this.#inFlight--
  }

  /** Observes a finished request; `reason` is its refusal's (null for a success). */
  observe(o: RequestObservation, reason: string | null): void {
    const model = o.model && reason !== 'unknown_model' ? this.#models.of(o.model) : ''
    const status = String(o.status)
    this.#requests.inc({ route: o.route, gen_ai_request_model: model, provider: o.provider, status })
    this.#duration.observe(
      { route: o.route, gen_ai_request_model: model, provider: o.provider, status },
      o.totalMs / 1000,
    )
    // A call with a record is billed whatever its client saw (a stream cut short, a client gone): fees and tokens
    // follow the usage ledger.
    if (o.fee !== null && o.provider) {
      const byProvider = { gen_ai_request_model: model, provider: o.provider }
      this.#fees.add(`${model}\n${o.provider}`, byProvider, o.fee)
      if (o.tokens) {
        const labels = { gen_ai_operation_name: OPERATIONS[o.endpoint] ?? o.endpoint, ...byProvider }
        this.#tokens.observe({ ...labels, gen_ai_token_type: 'input' }, Number(o.inputUnits))
        this.#tokens.observe({ ...labels, gen_ai_token_type: 'output' }, Number(o.outputUnits))
      }
    }
    if (reason) {
      this.#refusals.inc({ route: o.route, reason })
      return
    }
    if (!o.provider) return
    const byProvider = { gen_ai_request_model: model, provider: o.provider }
    this.#firstByte.observe({ route: o.route, ...byProvider }, o.firstByteMs / 1000)
    this.#overhead.observe({ route: o.route }, o.overheadMs / 1000)
    if (o.stream && o.firstByteAt) this.#ttft.observe(byProvider, o.firstByteMs / 1000)
    if (o.chunks > 1) {
      const span = (o.lastChunkAt - o.firstChunkAt) / 1000
      this.#chunkInterval.observe({ provider: o.provider }, span / (o.chunks - 1))
      if (o.tokens && o.outputUnits > 1n) this.#tpot.observe(byProvider, span / Number(o.outputUnits - 1n))
    }
    if (o.chunks > 0) this.#chunkGapMax.observe({ provider: o.provider }, o.maxGapMs / 1000)
  }

  /** A delivery's check is done. */
  verified(provider: string, status: string, level: string | null): void {
    this.#verifications.inc({ provider, status, level: level ?? 'none' })
  }

  /** A usage record committed `ms` after its call ended. */
  ledgerCommitted(ms: number): void {
    this.#ledgerLag.observe(ms / 1000)
  }

  get contentType(): string {
    return this.registry.contentType
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }
}

export type ProviderNodeMetricsSources = {
  /** What users owe the node and it has not settled, neuron (the usage store; read at scrape time). */
  unsettled?: () => bigint
  /** The backends the node spreads its calls over (read at scrape time). */
  backends?: () => Iterable<{ url: string; up: boolean; inFlight: number; calls: number }>
}

/** The provider node's metrics (its own GET /metrics). */
export class ProviderNodeMetrics {
  readonly registry = new Registry()
  #inFlight = 0
  readonly #models = new ModelLabels()
  readonly #requests: Counter
  readonly #admitted: Counter
  readonly #refused: Counter
  readonly #duration: Histogram
  readonly #ttft: Histogram
  readonly #tokens: Counter
  readonly #fees: NeuronCounter
  readonly #settlements: Counter
  readonly #settled: NeuronCounter
  readonly #runs: Counter

  constructor(sources: ProviderNodeMetricsSources = {}) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const self = this
    new Gauge({
      name: 'zg_provider_requests_in_flight',
      help: 'Proxied requests the node is serving now.',
      registers,
      collect() {
        this.set(self.#inFlight)
      },
    })
    this.#requests = new Counter({
      name: 'zg_provider_requests_total',
      help: 'Proxied requests, by endpoint and HTTP status.',
      labelNames: ['endpoint', 'status'],
      registers,
    })
    this.#admitted = new Counter({
      name: 'zg_provider_admissions_total',
      help: 'Requests admitted: session token valid, sub-account acknowledged and funded for their worst case.',
      registers,
    })
    this.#refused = new Counter({
      name: 'zg_provider_admissions_refused_total',
      help: 'Requests refused before reaching the backend, by reason (the error code: insufficient_balance, account_not_found, …).',
      labelNames: ['reason'],
      registers,
    })
    this.#duration = new Histogram({
      name: 'gen_ai_server_request_duration_seconds',
      help: 'Time from a proxied request’s arrival to its last byte, seconds.',
      labelNames: ['endpoint', 'gen_ai_request_model', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    })
    this.#ttft = new Histogram({
      name: 'gen_ai_server_time_to_first_token_seconds',
      help: 'Streams: time from the request’s arrival to the first chunk leaving for the client, seconds.',
      labelNames: ['gen_ai_request_model'],
      buckets: TTFT_BUCKETS,
      registers,
    })
    this.#tokens = new Counter({
      name: 'zg_provider_tokens_total',
      help: 'Tokens metered (billed) by the node, by type (input, output).',
      labelNames: ['gen_ai_request_model', 'gen_ai_token_type'],
      registers,
    })
    this.#fees = new NeuronCounter(
      this.registry,
      'zg_provider_fees_neuron_total',
      'Fees recorded for delivered answers, neuron (summed exactly as bigint, exported as a float).',
      ['gen_ai_request_model'],
    )
    this.#settlements = new Counter({
      name: 'zg_provider_settlements_total',
      help: 'Per-user settlement results (SUCCESS, PARTIAL, SKIPPED, or the contract’s failure status).',
      labelNames: ['outcome'],
      registers,
    })
    this.#settled = new NeuronCounter(
      this.registry,
      'zg_provider_settled_neuron_total',
      'Fees settled on-chain, neuron, by outcome (summed exactly as bigint, exported as a float).',
      ['outcome'],
    )
    this.#runs = new Counter({
      name: 'zg_provider_settlement_runs_total',
      help: 'Settlement runs, by result (ok, failed).',
      labelNames: ['result'],
      registers,
    })
    if (sources.unsettled) {
      const unsettled = sources.unsettled
      new Gauge({
        name: 'zg_provider_unsettled_fees_neuron',
        help: 'Fees recorded and not yet settled on-chain, over all users, neuron.',
        registers,
        collect() {
          this.set(Number(unsettled()))
        },
      })
    }
    if (sources.backends) {
      const backends = sources.backends
      // One gauge per figure, labelled by backend; set together from one read of the pool.
      const figures = [
        ['zg_provider_backend_up', 'Whether the backend passed its last health check (1) or not (0).', 'up'],
        ['zg_provider_backend_in_flight', 'Calls sent to the backend and not yet finished.', 'inFlight'],
        ['zg_provider_backend_calls', 'Calls sent to the backend since the node started.', 'calls'],
      ] as const
      for (const [name, help, field] of figures) {
        new Gauge({
          name,
          help,
          labelNames: ['backend'],
          registers,
          collect() {
            this.reset()
            for (const b of backends()) this.set({ backend: b.url }, Number(b[field]))
          },
        })
      }
    }
  }

  started(): void {
    this.#inFlight++
  }

  ended(): void {
    this.#inFlight--
  }

  admitted(): void {
    this.#admitted.inc()
  }

  /** Observes a finished request; `refusal` is the admission's refusal code, if it was refused. */
  observe(o: RequestObservation, refusal: string | null): void {
    const model = o.model ? this.#models.of(o.model) : ''
    const status = String(o.status)
    this.#requests.inc({ endpoint: o.endpoint, status })
    this.#duration.observe({ endpoint: o.endpoint, gen_ai_request_model: model, status }, o.totalMs / 1000)
    if (refusal) this.#refused.inc({ reason: refusal })
    if (o.stream && o.firstByteAt && o.status < 400)
      this.#ttft.observe({ gen_ai_request_model: model }, o.firstByteMs / 1000)
    if (o.fee !== null) {
      this.#fees.add(model, { gen_ai_request_model: model }, o.fee)
      if (o.tokens) {
        this.#tokens.inc({ gen_ai_request_model: model, gen_ai_token_type: 'input' }, Number(o.inputUnits))
        this.#tokens.inc({ gen_ai_request_model: model, gen_ai_token_type: 'output' }, Number(o.outputUnits))
      }
    }
  }

  /** A settlement run's per-user outcomes, or its failure. */
  settled(outcomes: readonly { status: string; settled: bigint }[] | Error): void {
    if (outcomes instanceof Error) {
      this.#runs.inc({ result: 'failed' })
      return
    }
    this.#runs.inc({ result: 'ok' })
    for (const o of outcomes) {
      this.#settlements.inc({ outcome: o.status })
      this.#settled.add(o.status, { outcome: o.status }, o.settled)
    }
  }

  get contentType(): string {
    return this.registry.contentType
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }
}
