import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { type Agent, errors as undiciErrors } from 'undici'
import type { Hex } from 'viem'
import { providerLevel } from '../attestation/levels.ts'
import { sha256Hex } from '../attestation/response-signature.ts'
import type { Receipt } from '../attestation/response-verifier.ts'
import type { EscrowManager } from '../billing/escrow.ts'
import { usageOfAnswer, withUsageCost } from '../billing/fee-annotation.ts'
import { billedUnits, feeOf, type Usage, usageFromBody } from '../billing/pricing.ts'
import type { Reconciler } from '../billing/reconciliation.ts'
import type { SessionTokenCache } from '../billing/session-token-cache.ts'
import { SSE_HEADERS, SseUsageTap } from '../billing/sse-usage-tap.ts'
import { streamSink } from '../billing/stream-sink.ts'
import type { CallRecord, UsageLedger } from '../billing/usage-ledger.ts'
import { type ClientSignal, clientAborted } from '../http/node-request.ts'
import { readUpstreamError } from '../http/upstream-error-body.ts'
import type { CatalogEntry, ProviderCatalog } from '../providers/catalog.ts'
import type { ModelAliases } from '../providers/model-aliases.ts'
import type { Router } from '../providers/router.ts'
import { dispatchTarget, UpstreamCall, type UpstreamStart } from '../providers/upstream-call.ts'
import type { DeliveryVerifier } from './delivery-verifier.ts'
import { gatewaySideFailure } from './gateway-side-failure.ts'
import { GatewayError, modelNotFound } from './http/openai-error.ts'
import type { Admission } from './key-admission.ts'
import type { OffPathQueue } from './off-path.ts'
import { type ReceiptSigner, signedReceipt } from './receipts.ts'
import type { ResponseStore } from './responses/store.ts'
import { speechAnswer } from './speech-answer.ts'
import { step } from './steps.ts'
import { meetRequirement, type SignerAttester, type VerificationRequirement } from './verification-policy.ts'

export type GatewayCore = {
  catalog: ProviderCatalog
  router: Router
  tokens: SessionTokenCache
  escrow?: EscrowManager
  ledger: UsageLedger
  /** Responses API responses, for previous_response_id and GET/DELETE /v1/responses/{id}. */
  responses: ResponseStore
  dispatcher: Agent
  /** Delivery checks. */
  verifier: DeliveryVerifier
  /** Where the records and checks that follow a delivery wait for an idle moment. */
  offPath: OffPathQueue
  /** How often a `: keep-alive` comment goes out while a provider is silent mid-stream. */
  keepAliveMs: number
  headersTimeoutMs: number
  /** How many providers one call may try before giving up. */
  maxAttempts: number
  /** Configured model names standing for models on the network (`gpt-4o-mini` → a 0G model). */
  aliases: ModelAliases
  /** Signs each checked delivery's receipt (the wallet); without one, receipts are not signed. */
  receiptSigner?: ReceiptSigner
  /** Signers attested at L2/L3: a verified response from one reaches that level; L2/L3 requirements attest. */
  attestations?: SignerAttester
  log: (line: string) => void
  /** Fired when a receipt is known (tests, metrics). */
  onReceipt?: (requestId: string, receipt: Receipt) => void
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
}

/** A provider's answer turned into another API's answer, as relay() writes it to the client. */
export type AnswerTranslation = {
  /** The client's JSON body for the provider's whole (non-streamed) answer. */
  json(provider: Uint8Array): Uint8Array
  /** A translator for one streamed answer. */
  stream(): StreamTranslator
}

export type StreamTranslator = {
  /** Provider bytes in, split anywhere; the client's bytes for the events they complete out. */
  push(provider: Uint8Array): Uint8Array
  /** The client's last bytes when the provider's stream failed or ended unfinished (in place of an error event). */
  fail(message: string): Uint8Array
}

function gatewayError(
  status: number,
  message: string,
  type: string,
  code: string | null,
  param: string | null = null,
  headers: Record<string, string> = {},
): GatewayError {
  return new GatewayError(status, message, { type, code, param, headers })
}

const ENCODER = new TextEncoder()

const DONE_ERROR = (message: string) =>
  `data: ${JSON.stringify({ error: { message, type: 'api_error', param: null, code: 'upstream_error' } })}\n\n`

/** Errors from the provider that another provider might not have: worth failing over. */
function worthFailover(status: number): boolean {
  return status >= 500 || status === 402 || status === 429 || status === 408
}

/**
 * Maps a provider's refusal onto what the gateway's client should see. The client's request was fine when the
 * provider refused the gateway itself (token, escrow): that is the gateway's upstream failing, a 502/503.
 */
function mapProviderError(entry: CatalogEntry, status: number, text: string, retryAfter?: string): GatewayError {
  const { message, param, code } = readUpstreamError(text)
  const where = `provider ${entry.provider}`
  // Which provider refused is part of every answer it shaped, as it is of every answer it served.
  const headers: Record<string, string> = { 'x-zg-provider': entry.provider }
  if (retryAfter) headers['retry-after'] = retryAfter
  const error = (status: number, message: string, type: string, code: string | null, param: string | null = null) =>
    gatewayError(status, message, type, code, param, headers)
  if (status === 401 || status === 403) {
    return error(502, `${where} refused the gateway's session: ${message}`, 'api_error', code ?? 'upstream_auth_error')
  }
  if (status === 402)
    return error(503, `${where} has no escrow headroom left: ${message}`, 'api_error', 'provider_unfunded')
  if (status === 429) return error(429, message, 'rate_limit_error', code ?? 'rate_limit_exceeded')
  if (status === 404) return error(404, message, 'invalid_request_error', code ?? 'model_not_found', param)
  if (status === 413) return error(413, message, 'invalid_request_error', 'request_too_large')
  if (status >= 500)
    return error(status === 504 ? 504 : 502, `${where} failed: ${message}`, 'api_error', code ?? 'upstream_error')
  const context = /maximum context length|context window/i.test(message)
  return error(
    400,
    message,
    'invalid_request_error',
    context ? 'context_length_exceeded' : (code ?? 'upstream_rejected'),
    param,
  )
}

/** The request for an alias's target: its model, and the body the provider sees, name the real model. */
function retargeted(core: GatewayCore, req: ForwardRequest): ForwardRequest {
  const model = core.aliases.resolve(req.model, req.endpoint, (id) => core.catalog.candidates(id))
  if (model === req.model) return req
  if (req.retarget) return { ...req, model, body: req.retarget(model) }
  if (!(req.body instanceof Uint8Array)) return { ...req, model }
  const json = JSON.parse(Buffer.from(req.body).toString('utf8')) as Record<string, unknown>
  return { ...req, model, body: Buffer.from(JSON.stringify({ ...json, model })) }
}

/** Forwards one call to a provider picked by the router, and relays the answer. */
export async function forward(core: GatewayCore, asked: ForwardRequest): Promise<Response> {
  // Most calls name a real model: no alias, no copy.
  const req = core.aliases.size ? retargeted(core, asked) : asked
  const routed = core.router.candidates(req.model)
  const eligible = req.requirement
    ? await meetRequirement(req.model, routed, req.requirement, core.attestations)
    : routed
  const candidates = req.admission ? req.admission.admit(eligible) : eligible
  step('routed')
  if (!candidates.length) {
    if (!core.catalog.models().some((m) => m.id === req.model)) throw modelNotFound(req.model)
    const setAside = core.catalog.candidates(req.model).filter((e) => core.router.isFlagged(e.provider))
    if (setAside.length && !routed.length) {
      throw gatewayError(
        503,
        `Every provider of model ${req.model} is set aside after disputed responses ` +
          `(${setAside.map((e) => e.provider).join(', ')}): the gateway's operator can resume one ` +
          '(POST /admin/funding/{provider}/resume).',
        'api_error',
        'no_provider_available',
      )
    }
    throw gatewayError(503, `no provider is available for model ${req.model}`, 'api_error', 'no_provider_available')
  }
  const replayable = req.body instanceof Uint8Array
  const attempts = replayable ? Math.min(core.maxAttempts, candidates.length) : 1
  let lastError: unknown
  for (let i = 0; i < attempts; i++) {
    const entry = candidates[i]!
    let renewedToken = false
    for (;;) {
      const started = performance.now()
      const call = new UpstreamCall(req.signal)
      let upstream: UpstreamStart
      try {
        // A provider already in use awaits neither (each await is a turn of a cold call's path).
        if (core.escrow && !core.escrow.isOpen(entry.provider)) await core.escrow.ensureOpen(entry.provider)
        const authorization =
          core.tokens.cachedAuthorization(entry.provider) ?? (await core.tokens.authorization(entry.provider))
        const { origin, path } = dispatchTarget(entry.url)
        core.dispatcher.dispatch(
          {
            origin,
            path: `${path}/v1/proxy/${req.endpoint}`,
            method: 'POST',
            headers: {
              authorization,
              'content-type': req.contentType,
              accept: req.stream ? 'text/event-stream' : 'application/json',
              'x-request-id': req.requestId,
            },
            body: req.body instanceof Uint8Array ? req.body : req.body(),
            headersTimeout: core.headersTimeoutMs,
            bodyTimeout: 0,
          },
          call,
        )
        // The request is on its way and the gateway waits for the provider: the moment for earlier calls' records.
        core.offPath.idle()
        upstream = await call.started
      } catch (err) {
        if (clientAborted(req.signal))
          throw gatewayError(499, 'the client closed the request', 'invalid_request_error', 'client_closed_request')
        // The wallet's own trouble (empty ledger, chain down) is no fault of this provider, and no other would fare better.
        const own = gatewaySideFailure(err)
        if (own) throw own
        // A streamed upload the gateway refused on its way (too large, malformed): the client's fault, not the provider's.
        if (err instanceof GatewayError && err.status < 500) throw err
        core.router.reportFailure(entry.provider)
        lastError =
          err instanceof undiciErrors.HeadersTimeoutError
            ? gatewayError(
                504,
                `provider ${entry.provider} sent no response in ${core.headersTimeoutMs} ms`,
                'api_error',
                'upstream_timeout',
              )
            : err instanceof GatewayError
              ? err
              : gatewayError(
                  502,
                  `provider ${entry.provider} is unreachable: ${(err as Error).message}`,
                  'api_error',
                  'upstream_unreachable',
                )
        break
      }
      if (upstream.statusCode >= 400) {
        const text = await call.text()
        const retryAfter = upstream.headers['retry-after']
        if (upstream.statusCode === 401 && !renewedToken && /generation/.test(text)) {
          // The wallet's tokens for this provider were revoked (generation bump): build a fresh one, once.
          core.tokens.invalidate(entry.provider)
          renewedToken = true
          continue
        }
        // Escrow ran dry while the wallet's ledger could not refill it: the wallet's problem, not this provider's.
        const short = upstream.statusCode === 402 ? core.escrow?.ledgerShortage(entry.provider) : undefined
        if (short) throw gatewaySideFailure(short) ?? short
        const error = mapProviderError(
          entry,
          upstream.statusCode,
          text,
          typeof retryAfter === 'string' ? retryAfter : undefined,
        )
        if (replayable && worthFailover(upstream.statusCode)) {
          core.router.reportFailure(entry.provider)
          lastError = error
          break
        }
        throw error
      }
      return relay(core, req, entry, upstream, call, started)
    }
  }
  if (lastError instanceof GatewayError && attempts > 1) {
    // The gateway already tried other providers: a client retry would only repeat that.
    throw new GatewayError(lastError.status, lastError.message, {
      type: lastError.type,
      code: lastError.code,
      headers: lastError.headers,
      noRetry: true,
    })
  }
  throw lastError
}

type Delivered = {
  status: number
  bytes: Uint8Array
  usage: () => Usage | undefined
  resKey: string | null
  /** ZG-Res-Signature, when the provider sent its signature along (a header, or a stream's trailer: zg-gateway nodes). */
  signature: Hex | null
  latencyMs: number
  /** Bytes the client received. */
  deliveredBytes: number
  /**
   * Why a stream stopped before the provider finished it, when nothing signed can follow: the client went away, or
   * the connection to the provider failed. The record is then final at once.
   */
  cutShort?: { by: 'client' | 'connection'; reason: string }
}

/** What a cut-short stream's record says: what reached the client, what the provider reported, why no signature. */
function cutShortDetail(d: Delivered, fee: bigint | undefined): string {
  const who =
    d.cutShort!.by === 'client'
      ? `the client closed the stream after ${d.deliveredBytes} bytes`
      : `the connection to the provider failed after ${d.deliveredBytes} bytes (${d.cutShort!.reason})`
  const billed =
    fee === undefined
      ? 'the provider reported no usage before that, so no fee is recorded'
      : `the provider reported its usage first: ${fee} neuron`
  return `${who}; ${billed}; a response cut short carries no provider signature to check`
}

/**
 * Records the call now, resolving once the record is committed (a group commit the calls ending in the same turn
 * share): the caller sends its last bytes after that, so an answer a client got in full is never missing from the
 * ledger after a crash. The delivery is verified off the request path (see OffPathQueue).
 */
function settleAfter(core: GatewayCore, req: ForwardRequest, entry: CatalogEntry, d: Delivered): Promise<void> {
  let recorded: Promise<void>
  let call: CallRecord
  let cutShort: string | null
  try {
    const usage = d.usage()
    const fee = usage ? feeOf(usage, entry).fee : 0n
    req.admission?.settle(fee, usage)
    const units = usage ? billedUnits(usage) : [0n, 0n]
    cutShort = d.cutShort ? cutShortDetail(d, usage ? fee : undefined) : null
    call = {
      requestId: req.requestId,
      createdAt: Date.now(),
      apiKeyId: req.apiKeyId,
      provider: entry.provider,
      model: req.model,
      endpoint: req.endpoint,
      stream: req.stream,
      status: d.status,
      inputUnits: units[0]!,
      outputUnits: units[1]!,
      fee,
      resKey: d.resKey,
      latencyMs: Math.round(d.latencyMs),
      deliveredBytes: d.deliveredBytes,
      // A stream cut short is final at once; any other answer, complete or ended by the provider, is checked.
      verification: cutShort ? 'unverifiable' : 'pending',
      verificationLevel: null,
      verificationDetail: cutShort,
    }
    recorded = core.ledger.recordDurably(call)
  } catch (err) {
    core.log(`gateway: recording ${req.requestId} failed: ${(err as Error).message}`)
    return Promise.resolve()
  }
  core.offPath.add(async () => {
    try {
      // The router's rankings are redone with this latency: off the way of this call and of the next.
      if (d.status === 200) core.router.reportSuccess(entry.provider, d.latencyMs)
      if (cutShort) {
        core.onReceipt?.(req.requestId, { status: 'unverifiable', level: null, detail: cutShort })
        return
      }
      const receipt = await core.verifier.verify({
        url: entry.url,
        model: req.model,
        verifiability: entry.verifiability,
        teeSignerAddress: entry.teeSignerAddress,
        teeSignerAcknowledged: entry.teeSignerAcknowledged,
        resKey: d.resKey,
        signature: d.signature,
        requestBody: { sha256: req.body instanceof Uint8Array ? sha256Hex(req.body) : (req.bodySha256?.() ?? '') },
        responseBody: { sha256: sha256Hex(d.bytes) },
      })
      const signed = core.receiptSigner && (await signedReceipt(core.receiptSigner, call, entry, receipt, core))
      core.ledger.setVerification(
        req.requestId,
        receipt.status,
        signed?.level ?? receipt.level,
        receipt.detail,
        signed?.text ?? null,
      )
      core.escrow?.onReceipt(entry.provider, receipt.status, call.fee)
      core.onReceipt?.(req.requestId, receipt)
    } catch (err) {
      core.log(`gateway: verifying ${req.requestId} failed: ${(err as Error).message}`)
    }
  })
  return recorded
}

/**
 * The level this answer will be checked at, as known when its headers leave: the provider's signer's (attested L2
 * or L3, else L1 for an acknowledged TEE signer), or none. The answer's own check is in its receipt.
 */
function knownLevel(core: GatewayCore, entry: CatalogEntry): string {
  return providerLevel(entry, core.attestations?.known(entry.provider, entry.teeSignerAddress)?.level)
}

function responseHeaders(
  core: GatewayCore,
  req: ForwardRequest,
  entry: CatalogEntry,
  contentType: string,
): Record<string, string> {
  return {
    ...req.responseHeaders,
    'content-type': contentType,
    'x-request-id': req.requestId,
    'x-zg-provider': entry.provider,
    'x-zg-verification': knownLevel(core, entry),
    'x-zg-receipt': `/v1/receipts/${req.requestId}`,
  }
}

/** A header or trailer sent once, or null. */
function field(fields: IncomingHttpHeaders, name: string): string | null {
  const value = fields[name]
  return typeof value === 'string' ? value : null
}

async function relay(
  core: GatewayCore,
  req: ForwardRequest,
  entry: CatalogEntry,
  upstream: UpstreamStart,
  call: UpstreamCall,
  started: number,
): Promise<Response> {
  step('relay')
  const contentType = String(upstream.headers['content-type'] ?? 'application/json')
  const resKey = field(upstream.headers, 'zg-res-key')
  if (!contentType.includes('text/event-stream')) {
    const bytes = await call.bytes()
    const latencyMs = performance.now() - started
    // Speech is raw audio: its duration and fee come in headers, passed on (see speechAnswer).
    const speech =
      req.endpoint === 'audio/speech' ? speechAnswer(upstream.headers, contentType, bytes, entry) : undefined
    // The fee goes out with the answer: only the usage object is parsed (usageOfAnswer), once, for both.
    const usage = speech ? speech.usage : usageOfAnswer(req.endpoint, contentType, bytes)
    const fee = usage ? feeOf(usage, entry).fee : undefined
    // The client's copy carries usage.cost (a translation carries it over); the receipt is checked over the
    // provider's own bytes.
    const costed = fee !== undefined && contentType.includes('json') ? withUsageCost(bytes, fee) : bytes
    const body = req.translate ? req.translate.json(costed) : costed
    const recorded = settleAfter(core, req, entry, {
      status: 200,
      bytes,
      usage: () => usage,
      resKey,
      signature: field(upstream.headers, 'zg-res-signature') as Hex | null,
      latencyMs,
      deliveredBytes: body.length,
    })
    const clientType = req.translate ? 'application/json' : contentType
    // Nothing leaves before the record is committed (see settleAfter).
    await recorded
    return new Response(body, {
      status: 200,
      headers: {
        ...responseHeaders(core, req, entry, clientType),
        ...(fee !== undefined && { 'x-zg-fee': fee.toString() }),
        ...speech?.headers,
      },
    })
  }

  const usageOf = (u: Record<string, unknown>) => usageFromBody(req.endpoint, { usage: u })
  const feeOfUsage = (u: Record<string, unknown> | undefined) => {
    const usage = u && usageOf(u)
    return usage ? feeOf(usage, entry).fee : undefined
  }
  // [DONE] is held back until the call is recorded (onEnd); a shown usage chunk carries its cost.
  const tap = new SseUsageTap({
    dropUsageChunk: !req.clientWantsUsage,
    feeOf: req.clientWantsUsage ? feeOfUsage : undefined,
    holdDone: true,
  })
  // What the client gets: the provider's events as they are, or (translate) their translation.
  const translator = req.translate?.stream()
  const forClient = (bytes: Buffer): Uint8Array => (translator ? translator.push(bytes) : bytes)
  const failure = (message: string) => (translator ? translator.fail(message) : ENCODER.encode(DONE_ERROR(message)))
  const received: Buffer[] = []
  let lastSent = Date.now()
  let keepAlive: NodeJS.Timeout | undefined
  let finished = false
  let deliveredBytes = 0
  const finish = (status: number, cutShort?: Delivered['cutShort']): Promise<void> | undefined => {
    if (finished) return
    finished = true
    clearInterval(keepAlive)
    const latencyMs = performance.now() - started
    return settleAfter(core, req, entry, {
      status,
      bytes: Buffer.concat(received),
      usage: () => (tap.usage ? usageOf(tap.usage) : undefined),
      resKey,
      // A zg-gateway node sends a stream's signature as a trailer; undici has it by the body's end (a stream the
      // provider itself ended with an error event is signed too).
      signature: cutShort ? null : (field(call.trailers, 'zg-res-signature') as Hex | null),
      latencyMs,
      deliveredBytes,
      cutShort,
    })
  }
  const clientGone = () => {
    // The client went away: the provider call is aborted (its signal does the same); nothing more is relayed.
    if (finished) return
    clearInterval(keepAlive)
    call.abort()
    finish(499, { by: 'client', reason: 'client closed' })
  }
  // The fee is known only at the end: it follows the last byte as a trailer.
  const headers = { ...responseHeaders(core, req, entry, contentType), ...SSE_HEADERS, trailer: 'x-zg-fee' }
  const hooks = { drain: () => call.resume(), gone: clientGone }
  // Under @hono/node-server, written straight to the Node response: no web-stream hops per event.
  const { sink, response } = streamSink(req.outgoing, 200, headers, hooks)
  const onData = (chunk: Buffer) => {
    received.push(chunk)
    const out = forClient(tap.push(chunk))
    if (!out.length) return
    lastSent = Date.now()
    deliveredBytes += out.length
    if (!sink.write(out)) call.pause()
  }
  const onEnd = () => {
    if (finished) return
    const tail = forClient(tap.flush())
    deliveredBytes += tail.length
    if (tail.length) sink.write(tail)
    const done = tap.heldDone ? forClient(tap.heldDone) : undefined
    deliveredBytes += done?.length ?? 0
    let recorded: Promise<void> | undefined
    // Never end a stream silently: without [DONE] and without an error, the answer was cut off.
    if (!tap.done && !tap.errored) {
      sink.write(failure(`provider ${entry.provider} ended the stream before it was complete`))
      recorded = finish(502)
    } else recorded = finish(tap.errored ? 502 : 200)
    const fee = feeOfUsage(tap.usage)
    const end = () => {
      // [DONE] leaves once the record is committed: a client that saw it has a record, even after a crash.
      if (done?.length) sink.write(done)
      sink.end(fee === undefined ? undefined : { 'x-zg-fee': fee.toString() })
    }
    if (recorded) void recorded.then(end)
    else end()
  }
  const onError = (err: Error) => {
    if (clientAborted(req.signal) || finished) return
    core.router.reportFailure(entry.provider)
    const tail = forClient(tap.flush())
    sink.write(Buffer.concat([tail, failure(`provider ${entry.provider} failed mid-stream: ${err.message}`)]))
    finish(502, { by: 'connection', reason: err.message })
    sink.end()
  }
  // The first event, when it came with the headers, goes out before anything the stream needs later is set up.
  call.relay(onData, onEnd, onError)
  // (Unless the stream ended or the client went away already, in the writes above.)
  if (!finished) {
    keepAlive = setInterval(() => {
      // A comment line: clients ignore it, and it keeps proxies and idle timers from closing a quiet stream.
      if (Date.now() - lastSent >= core.keepAliveMs) {
        sink.write(ENCODER.encode(': keep-alive\n\n'))
        lastSent = Date.now()
      }
    }, core.keepAliveMs)
    keepAlive.unref()
  }
  return response
}
