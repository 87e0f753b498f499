import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Agent } from 'undici'
import type { Receipt } from '../attestation/response-verifier.ts'
import type { EscrowManager } from '../billing/escrow.ts'
import type { Reconciler } from '../billing/reconciliation.ts'
import type { SessionTokenCache } from '../billing/session-token-cache.ts'
import type { CallLedger } from '../billing/usage-ledger.ts'
import type { ClientSignal } from '../http/node-request.ts'
import type { GatewayObservability } from '../observability/gateway.ts'
import type { RequestObservation } from '../observability/request-log.ts'
import type { ProviderCatalog } from '../providers/catalog.ts'
import type { ModelAliases } from '../providers/model-aliases.ts'
import type { Prober } from '../providers/probes.ts'
import type { RoutingControls } from '../providers/ranking.ts'
import type { Router } from '../providers/router.ts'
import { attempt, ProviderFailure } from './attempt.ts'
import type { DeliveryVerifier } from './delivery-verifier.ts'
import type { TunedModelDirectory } from './fine-tuning/tuned-models.ts'
import { GatewayError } from './http/openai-error.ts'
import type { Admission } from './key-admission.ts'
import type { OffPathQueue } from './off-path.ts'
import type { ReceiptSigner } from './receipts.ts'
import { relay } from './relay.ts'
import type { ResponseRecords } from './responses/store.ts'
import { route } from './route.ts'
import { step } from './steps.ts'
import { callTimeouts, type KeyTimeouts, type UpstreamLimits, type UpstreamTimeouts } from './upstream-limits.ts'
import type { SignerAttester, VerificationRequirement } from './verification-policy.ts'

export type GatewayCore = {
  catalog: ProviderCatalog
  router: Router
  tokens: SessionTokenCache
  escrow?: EscrowManager
  ledger: CallLedger
  /** Responses API responses, for previous_response_id and GET/DELETE /v1/responses/{id}. */
  responses: ResponseRecords
  dispatcher: Agent
  /** Delivery checks. */
  verifier: DeliveryVerifier
  /** Where the records and checks that follow a delivery wait for an idle moment. */
  offPath: OffPathQueue
  /** How often a `: keep-alive` comment goes out while a provider is silent mid-stream. */
  keepAliveMs: number
  /** How long the gateway waits on a provider (connect, first byte, total, idle), and how much it reads of one. */
  timeouts: UpstreamTimeouts
  limits: UpstreamLimits
  /** How many providers one call may try before giving up. */
  maxAttempts: number
  /** Configured model names standing for models on the network (`gpt-4o-mini` → a 0G model). */
  aliases: ModelAliases
  /** Fine-tuned models (`ft:…`): which base model and provider serve each, for the key that trained it. */
  tunedModels?: TunedModelDirectory
  /** The fine-tuning jobs' runner and records (closed with the core). */
  fineTuning?: { close(): Promise<void> }
  /** Signs each checked delivery's receipt (the wallet); without one, receipts are not signed. */
  receiptSigner?: ReceiptSigner
  /** Signers attested at L2/L3: a verified response from one reaches that level; L2/L3 requirements attest. */
  attestations?: SignerAttester
  log: (line: string) => void
  /** Metrics and the request log (GET /metrics; docs/operations.md). */
  observability?: GatewayObservability
  /** Fired when a receipt is known (tests, metrics). */
  onReceipt?: (requestId: string, receipt: Receipt) => void
  /** Active probes of open, failing and idle providers. */
  prober?: Prober
  /** On-chain charges against the ledger, kept current in the background (GET /admin/reconciliation). */
  reconciler?: Reconciler
}

export type ForwardRequest = {
  endpoint: string
  model: string
  /** The bytes to send (JSON), or a one-shot stream (multipart uploads, which cannot be replayed). */
  body: Uint8Array | (() => Readable)
  /** For a streamed body: the sha256 hex of what was streamed, for verification. */
  bodySha256?: () => string
  contentType: string
  stream: boolean
  /** The client asked for the usage chunk (stream_options.include_usage). */
  clientWantsUsage: boolean
  requestId: string
  apiKeyId: string | null
  /** Aborted when the client goes away. */
  signal: ClientSignal
  /** The Node response, under @hono/node-server: a stream is then written to it directly. */
  outgoing?: ServerResponse
  /** Headers every answer carries beside the gateway's own (CORS for an allowed browser origin). */
  responseHeaders?: Record<string, string>
  /**
   * The body with its model replaced (an alias resolved), for a body forward() cannot rewrite itself: a one-shot
   * stream. A JSON body is rewritten by forward().
   */
  retarget?: (model: string) => ForwardRequest['body']
  /**
   * For a client API the provider does not serve (the Responses API, served by chat completions): how the
   * provider's answer becomes the client's. The record and the receipt still cover the provider's own bytes.
   */
  translate?: AnswerTranslation
  /** The API key's checks (budget): narrows the candidates, settles on record. */
  admission?: Admission
  /** What the key and the request require of the provider (verification level, TEE only). */
  requirement?: VerificationRequirement
  /** The key's own timeouts, over the gateway's. */
  timeouts?: KeyTimeouts
  /** Routing controls of the request and its key (pin, sort, fallbacks, price ceilings: docs/routing.md). */
  controls?: RoutingControls
  /** What the request went through, for its log line and metrics (src/observability/request-log.ts). */
  observation?: RequestObservation
}

/** A provider's answer turned into another API's answer, as relay() writes it to the client. */
export type AnswerTranslation = {
  /** The client's JSON body for the provider's whole (non-streamed) answer. */
  json(provider: Uint8Array): Uint8Array
  /** A translator for one streamed answer. */
  stream(): StreamTranslator
  /** What the translation keeps once the answer is whole (a stored response): the last bytes wait for it too. */
  committed?(): Promise<void> | undefined
}

export type StreamTranslator = {
  /** Provider bytes in, split anywhere; the client's bytes for the events they complete out. */
  push(provider: Uint8Array): Uint8Array
  /** The client's last bytes when the provider's stream failed or ended unfinished (in place of an error event). */
  fail(message: string): Uint8Array
}

/**
 * Forwards one call: route (who may serve it, best first) → attempt (one provider, until its answer can be relayed;
 * the next on a failure another provider might not have, before anything reached the client) → relay (to the
 * client) → account (the record, before the last byte; the check and the receipt after).
 */
export async function forward(core: GatewayCore, asked: ForwardRequest): Promise<Response> {
  const { req, candidates } = await route(core, asked)
  step('routed')
  const deadline = performance.now() + callTimeouts(core.timeouts, req.timeouts).totalMs
  // An upload streamed to the first provider cannot be sent again.
  const attempts = req.body instanceof Uint8Array ? Math.min(core.maxAttempts, candidates.length) : 1
  let last: GatewayError | undefined
  let tried = 0
  for (const entry of candidates.slice(0, attempts)) {
    if (tried > 0 && performance.now() >= deadline) break
    tried++
    try {
      const answered = await attempt(core, req, entry, deadline)
      waited(req.observation)
      return relay(core, req, answered, tried)
    } catch (err) {
      waited(req.observation)
      if (!(err instanceof ProviderFailure)) throw err
      core.router.reportFailure(entry.provider, err.retryAfterMs)
      last = err.error
    }
  }
  const error =
    last ??
    new GatewayError(504, `no provider answered within ${callTimeouts(core.timeouts, req.timeouts).totalMs} ms`, {
      type: 'api_error',
      code: 'upstream_timeout',
    })
  // The real cause, saying how many providers were tried; a client retry would only repeat that.
  throw new GatewayError(error.status, tried > 1 ? `${error.message} (${tried} providers tried)` : error.message, {
    type: error.type,
    code: error.code,
    param: error.param,
    headers: { ...error.headers, 'x-zg-attempts': String(tried) },
    noRetry: tried > 1,
  })
}

/** The time since the attempt's dispatch was spent waiting on the provider, not in the gateway. */
function waited(o: RequestObservation | undefined): void {
  if (!o?.dispatchedAt) return
  o.upstreamMs += performance.now() - o.dispatchedAt
  o.dispatchedAt = 0
}
