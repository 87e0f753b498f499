import { createHash, randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { Context } from 'hono'
import { type Agent, errors as undiciErrors } from 'undici'
import type { Address, Hex } from 'viem'
import { sha256Hex } from '../attestation/response-signature.ts'
import type { TeeSigner } from '../attestation/tee-signer.ts'
import {
  billableSeconds,
  billedUnits,
  estimateFee,
  feeOf,
  type Prices,
  type Usage,
  usageFromBody,
  usageOfResponse,
} from '../billing/pricing.ts'
import { SSE_HEADERS, SseUsageTap } from '../billing/sse-usage-tap.ts'
import { streamSink } from '../billing/stream-sink.ts'
import { COMPLETIONS_DEFAULT_MAX_TOKENS, statedMaxTokens, worstCaseFee } from '../billing/worst-case-fee.ts'
import { BodyTooLargeError, readBody } from '../http/early-body.ts'
import {
  ClientGone,
  type ClientSignal,
  clientAborted,
  clientSignal,
  nodeRequest,
  nodeResponse,
  requestHeader,
} from '../http/node-request.ts'
import { sseErrorEvent } from '../http/sse-error-event.ts'
import { observationOf } from '../observability/http-requests.ts'
import type { ProviderNodeObservability } from '../observability/provider-node.ts'
import type { RequestObservation } from '../observability/request-log.ts'
import { dispatchTarget, UpstreamCall, type UpstreamStart } from '../providers/upstream-call.ts'
import type { AdapterRegistry } from './adapters.ts'
import type { Admission } from './admission.ts'
import { authenticate } from './authenticate.ts'
import type { Backend, BackendPool } from './backends.ts'
import type { ChainView } from './chain-view.ts'
import type { ContextLengths } from './context-lengths.ts'
import { CORS_HEADERS, corsOnResponse } from './cors.ts'
import { ProviderError } from './provider-error.ts'
import { type MeteredSpeech, meterSpeech, type SpeechRequest, speechHeaders, speechRequest } from './speech.ts'
import { upstreamError } from './upstream-error.ts'
import type { UsageRecord, UsageStore } from './usage-store.ts'

export type ProxyDeps = {
  /** The OpenAI-compatible backends the calls are spread over. */
  backends: BackendPool
  /** Fine-tuned adapters deployed on the backends, each callable by its owner only. */
  adapters?: AdapterRegistry
  /** Largest adapter archive accepted (`PUT /v1/adapters/{name}`), in bytes. */
  adapterLimit?: number
  backendApiKey?: string
  dispatcher: Agent
  chain: ChainView
  admission: Admission
  store: UsageStore
  signer: TeeSigner
  /** Largest JSON body accepted, in bytes. */
  jsonBodyLimit: number
  /** Largest multipart upload accepted, in bytes. */
  uploadLimit: number
  /** How long the backend may take to send its response headers. */
  headersTimeoutMs: number
  /** The backend's context lengths, which bound a chat call that states no max_tokens. */
  contexts: ContextLengths
  /**
   * The output cap of a chat call that states none when the backend reports no context length for its model: held,
   * and sent to the backend as max_tokens.
   */
  defaultMaxTokens: bigint
  log: (line: string) => void
  /** Metrics and the request log (its /metrics; docs/operations.md). */
  observability?: ProviderNodeObservability
  /** /metrics answers any client, not only loopback ones. */
  metricsPublic?: boolean
  /** TEST ONLY: neuron added to every recorded fee, so tests can prove reconciliation catches an over-charge. */
  testExtraFeePerCall?: bigint
  /** TEST ONLY: sign other bytes than the response sent, so tests can prove such responses are disputed. */
  testSignOtherBytes?: boolean
}

/** Endpoints whose request is JSON; uploads (audio to transcribe, images to edit) are multipart and streamed through. */
export const JSON_ENDPOINTS = [
  'chat/completions',
  'completions',
  'embeddings',
  'images/generations',
  'audio/speech',
] as const
export const MULTIPART_ENDPOINTS = ['audio/transcriptions', 'audio/translations', 'images/edits'] as const

/** Headers a backend must never see, nor the client get back (0G broker RequestMetaDataDuplicate, plus hop-by-hop). */
const STRIPPED = new Set([
  'address',
  'fee',
  'input-fee',
  'nonce',
  'request-hash',
  'signature',
  'session-token',
  'session-signature',
  'authorization',
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'accept-encoding',
])

function backendHeaders(c: Context, deps: ProxyDeps, contentType: string): Record<string, string> {
  const headers: Record<string, string> = {}
  const keep = (k: string) => !STRIPPED.has(k) && !k.startsWith('x-zg-') && !k.startsWith('zg-')
  // Node's parsed headers when at hand: iterating the web request's would build a Headers object for them.
  const incoming = nodeRequest(c)
  if (incoming) {
    for (const [k, v] of Object.entries(incoming.headers)) {
      if (v !== undefined && keep(k)) headers[k] = typeof v === 'string' ? v : v.join(', ')
    }
  } else {
    for (const [k, v] of c.req.raw.headers) if (keep(k)) headers[k] = v
  }
  headers['content-type'] = contentType
  // The node hashes and signs the bytes it relays: they must not be compressed on the way.
  headers['accept-encoding'] = 'identity'
  if (deps.backendApiKey) headers.authorization = `Bearer ${deps.backendApiKey}`
  return headers
}

function pricesOf(service: { inputPrice: bigint; outputPrice: bigint }): Prices {
  return { inputPrice: service.inputPrice, outputPrice: service.outputPrice }
}

/** A call under way to one backend: its status and headers, the body through `call`, and where it went. */
type BackendCall = { upstream: UpstreamStart; call: UpstreamCall; backend: Backend }

/** Errors that mean the connection was never made, so the backend saw nothing of the call. */
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
])

function notConnected(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } }
  return NOT_CONNECTED.has(e.code ?? '') || NOT_CONNECTED.has(e.cause?.code ?? '')
}

/**
 * One call to a backend (the least busy that is up): its status and headers once they come; the body through
 * `call`. A backend that refuses the connection is marked down and, while `resendable()` (nothing of the body was
 * read yet), the call goes to the next one, with a fresh `body()`. The backend's in-flight count is the caller's to
 * give back (deps.backends.done) once the call has ended.
 */
async function callBackend(
  deps: ProxyDeps,
  endpoint: string,
  headers: Record<string, string>,
  body: () => Buffer | Readable,
  signal: ClientSignal,
  resendable: () => boolean = () => true,
): Promise<BackendCall> {
  const tried = new Set<Backend>()
  let refused: Error | undefined
  for (;;) {
    const backend = deps.backends.take(tried)
    if (!backend) {
      if (refused && !deps.backends.several) throw unreachable(refused)
      throw new ProviderError(
        503,
        'backend_unavailable',
        `no model backend of this provider node is up right now (${deps.backends.states().length} down${refused ? `; last: ${refused.message}` : ''}); try again shortly`,
        { headers: { 'retry-after': '5' } },
      )
    }
    tried.add(backend)
    const call = new UpstreamCall(signal)
    try {
      const { origin, path } = dispatchTarget(backend.url)
      deps.dispatcher.dispatch(
        {
          origin,
          path: `${path}/v1/${endpoint}`,
          method: 'POST',
          headers,
          body: body(),
          headersTimeout: deps.headersTimeoutMs,
          bodyTimeout: 0,
        },
        call,
      )
      return { upstream: await call.started, call, backend }
    } catch (err) {
      deps.backends.done(backend)
      if (clientAborted(signal)) throw clientClosed()
      if (err instanceof undiciErrors.HeadersTimeoutError) {
        throw new ProviderError(
          504,
          'upstream_timeout',
          `the model backend sent no response within ${deps.headersTimeoutMs} ms`,
        )
      }
      if (!notConnected(err)) throw unreachable(err as Error)
      deps.backends.down(backend, (err as Error).message)
      refused = err as Error
      if (!resendable()) throw unreachable(refused)
    }
  }
}

const unreachable = (err: Error) =>
  new ProviderError(502, 'backend_unavailable', `the model backend is unreachable: ${err.message}`)

/** Gives back the admission hold and the backend's in-flight count, once, however the call ends. */
function callEnded(deps: ProxyDeps, backend: Backend, release: () => void): () => void {
  let ended = false
  return () => {
    if (ended) return
    ended = true
    release()
    deps.backends.done(backend)
  }
}

type Billing = {
  user: Address
  endpoint: string
  model: string
  prices: Prices
  requestHash: string
  /** Used for audio in plain-text format, which carries no timing: the upload-size estimate, in seconds. */
  fallbackSeconds?: bigint
  /** A text-to-speech call: billed per second of the audio returned, within what it reserved. */
  speech?: SpeechRequest
  /** The request's observation, told what was billed. */
  observation?: RequestObservation
}

/** Nodes that have logged a speech billed at its reservation: once is enough to tell the operator. */
const warnedReservedSpeech = new WeakSet<ProxyDeps>()

function warnIfReserved(deps: ProxyDeps, metered: MeteredSpeech | undefined): void {
  if (metered?.source !== 'reserved' || warnedReservedSpeech.has(deps)) return
  warnedReservedSpeech.add(deps)
  deps.log(
    'speech: the backend sent no X-0G-Audio-Duration-Seconds and its audio format cannot be measured (only WAV and ' +
      'PCM can): such calls are billed at their reserved ceiling, min(max_duration, 120) s',
  )
}

/**
 * Signs what was delivered and records it (the fee, when usage is known, and the signature) in one durable commit,
 * before the client sees the end of the response: the signature is then always there when a client asks for it, and
 * nothing the user was charged for is lost on a crash. Both are local and together the node's largest cost per call:
 * on the 2-core development machine, signing (libsecp256k1) 0.1 ms warm and about 0.2 ms between other processes'
 * work, the commit about 0.15 ms (its checkpoints run on another thread: src/billing/wal-checkpointer.ts). A signing
 * failure is logged and the response still goes out, unsigned: it was delivered and is billed.
 */
async function finish(
  deps: ProxyDeps,
  billing: Billing,
  resKey: string,
  responseHash: string,
  usage: Usage | undefined,
): Promise<Hex | undefined> {
  const signedHash = deps.testSignOtherBytes ? sha256Hex(`not ${responseHash}`) : responseHash
  const text = `${billing.requestHash}:${signedHash}`
  let signature: Hex | undefined
  try {
    signature = await deps.signer.signMessage(text)
  } catch (err) {
    deps.log(`signing response ${resKey} failed: ${(err as Error).message}`)
  }
  const createdAt = Date.now()
  let record: Omit<UsageRecord, 'resKey'> | undefined
  if (usage) {
    const [inputCount, outputCount] = billedUnits(usage)
    record = {
      user: billing.user,
      createdAt,
      endpoint: billing.endpoint,
      model: billing.model,
      inputCount,
      outputCount,
      ...feeOf(usage, billing.prices),
    }
    if (deps.testExtraFeePerCall) record.fee += deps.testExtraFeePerCall
    const observed = billing.observation
    if (observed) {
      observed.fee = record.fee
      observed.inputUnits = inputCount
      observed.outputUnits = outputCount
      observed.tokens = usage.kind === 'tokens'
    }
  }
  await deps.store.recordDelivery({ resKey, usage: record, signature: signature && { text, signature, createdAt } })
  return signature
}

/**
 * Relays the backend's answer to the client: buffered for JSON, event by event for SSE. Always signs and records.
 * Under @hono/node-server, a stream's signature goes along as an HTTP trailer once its last byte is signed, so a
 * client that reads trailers needs no second round trip for it.
 */
async function relay(
  deps: ProxyDeps,
  billing: Billing,
  { upstream, call }: BackendCall,
  release: () => void,
  clientAskedUsage: boolean,
  c: Context,
  signal: ClientSignal,
): Promise<Response> {
  const contentType = String(upstream.headers['content-type'] ?? 'application/json')
  if (upstream.statusCode >= 400) {
    const text = await call.text()
    const retryAfter = upstream.headers['retry-after']
    throw upstreamError(upstream.statusCode, text, typeof retryAfter === 'string' ? retryAfter : undefined)
  }
  const resKey = randomUUID()
  if (!contentType.includes('text/event-stream')) {
    const body = await call.bytes()
    if (await abandoned(signal)) throw clientClosed()
    // Speech is raw audio: its billed seconds and fee travel in headers (0G audio-generation), not in a usage block.
    const speech = billing.speech && meterSpeech(billing.speech, upstream.headers, contentType, body)
    warnIfReserved(deps, speech)
    let signature: Hex | undefined
    try {
      signature = await finish(
        deps,
        billing,
        resKey,
        sha256Hex(body),
        speech
          ? speech.usage
          : usageOfResponse(billing.endpoint, contentType, body, { fallbackSeconds: billing.fallbackSeconds }),
      )
    } finally {
      release()
    }
    const headers: Record<string, string> = {
      'content-type': contentType,
      'ZG-Res-Key': resKey,
      ...CORS_HEADERS,
      ...(speech && speechHeaders(speech, billing.prices)),
    }
    // The signature the signature route serves, sent along: a client that reads it needs no second round trip.
    if (signature) headers[RES_SIGNATURE] = signature
    corsOnResponse(c)
    unbillIfUndelivered(deps, signal, resKey)
    return new Response(body, { status: upstream.statusCode, headers })
  }

  const tap = new SseUsageTap({ dropUsageChunk: !clientAskedUsage })
  const hash = createHash('sha256')
  let ended = false
  const headers: Record<string, string> = {
    'content-type': contentType,
    ...SSE_HEADERS,
    'ZG-Res-Key': resKey,
    ...CORS_HEADERS,
  }
  corsOnResponse(c)
  const outgoing = nodeResponse(c)
  if (outgoing) {
    headers.trailer = RES_SIGNATURE
    // Written directly to the Node response: the marker tells @hono/node-server it has nothing left to send.
    c.res = RESPONSE_ALREADY_SENT
  }
  const hooks = {
    drain: () => call.resume(),
    gone: () => {
      // The client went away: stop the backend at once. Nothing complete was delivered, so nothing is billed.
      if (ended) return
      ended = true
      call.abort()
      release()
    },
  }
  // Under @hono/node-server, written straight to the Node response: no web-stream hops per event, and the signature
  // can follow the last byte as a trailer.
  const { sink, response } = streamSink(outgoing, upstream.statusCode, headers, hooks)
  const observed = billing.observation
  const send = (bytes: Uint8Array) => {
    if (!bytes.length) return
    if (observed && !observed.firstByteAt) observed.firstByteAt = performance.now()
    hash.update(bytes)
    if (!sink.write(bytes)) call.pause()
  }
  const end = async (tail: Uint8Array) => {
    if (ended) return
    ended = true
    send(tail)
    if (await abandoned(signal)) {
      // Gone before its last byte: not billed, as for a stream the client cuts short (`gone` above).
      release()
      return
    }
    let signature: Hex | undefined
    try {
      const usage = tap.usage ? usageFromBody(billing.endpoint, { usage: tap.usage }) : undefined
      signature = await finish(deps, billing, resKey, hash.digest('hex'), usage)
      unbillIfUndelivered(deps, signal, resKey)
    } catch (err) {
      // Everything was delivered; only the record failed (the store is unwritable). The client's answer still ends
      // properly, unsigned, and the operator sees why.
      deps.log(`recording stream ${resKey} failed: ${(err as Error).message}`)
    } finally {
      release()
      sink.end(signature ? { [RES_SIGNATURE]: signature } : undefined)
    }
  }
  const onError = (err: Error) => {
    if (ended) return
    deps.log(`backend stream failed: ${err.message}`)
    void end(Buffer.concat([tap.flush(), sseErrorEvent(`the model backend failed mid-stream: ${err.message}`)]))
  }
  // What came with the headers (usually the first event) is relayed at once.
  call.relay(
    (chunk) => send(tap.push(chunk)),
    () => void end(tap.flush()),
    onError,
  )
  return response
}

/** The header (non-streamed answers) or trailer (streams) that carries the response's signature. */
const RES_SIGNATURE = 'ZG-Res-Signature'

const clientClosed = () => new ProviderError(499, 'client_closed_request', 'the client closed the request')

/**
 * Whether the client went away before its answer could be billed. Socket events already received but not yet
 * handled are let through first (one turn to the check phase, microseconds): a node resumed after a stall (SIGSTOP,
 * a long GC) sees the backend's answer and the client's earlier close in the same poll, the answer first, and
 * must not bill a call its client abandoned before the answer existed.
 */
async function abandoned(signal: ClientSignal): Promise<boolean> {
  await new Promise<void>((resolve) => setImmediate(resolve))
  return clientAborted(signal)
}

/**
 * Takes a recorded call's fee back if its client goes away before the response is fully written (a large body the
 * client stopped reading, a stream's last bytes): the user is billed only for answers delivered whole. The record
 * stays if a settlement already claimed it (the window is the response's write, milliseconds).
 */
function unbillIfUndelivered(deps: ProxyDeps, signal: ClientSignal, resKey: string): void {
  const unbill = () => {
    Promise.resolve()
      .then(() => deps.store.unrecord(resKey))
      .catch((err: Error) => deps.log(`taking back undelivered ${resKey} failed: ${err.message}`))
  }
  if (clientAborted(signal)) unbill()
  else if (signal instanceof ClientGone) signal.once('abort', unbill)
  else signal.addEventListener('abort', unbill, { once: true })
}

/** The JSON body, up to `limit` bytes (src/http/early-body.ts), else the node's 413. */
export async function jsonBytes(c: Context, limit: number): Promise<Buffer> {
  try {
    return await readBody(c, limit)
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw tooLarge(limit)
    throw err
  }
}

const tooLarge = (limit: number) =>
  new ProviderError(413, 'request_too_large', `the request body is larger than ${limit} bytes`)

/**
 * What bounds the output of a chat call that states no max_tokens: the model's context when the backend reports it
 * (vLLM writes no further; held, and the call goes out as it came), else the node's default cap, held and sent along
 * as max_tokens. A completion without one is sent the API's own default, 16, whatever the backend's. `held` is what
 * worstCaseFee holds an uncapped chat call to; `send` the max_tokens to add, if any.
 */
function outputCap(
  deps: ProxyDeps,
  endpoint: string,
  body: Record<string, unknown>,
  model: string,
): { held: bigint; send?: bigint } | Promise<{ held: bigint; send?: bigint }> {
  const held = deps.defaultMaxTokens
  if (statedMaxTokens(endpoint, body) !== undefined) return { held }
  if (endpoint === 'completions') return { held, send: COMPLETIONS_DEFAULT_MAX_TOKENS }
  if (endpoint !== 'chat/completions') return { held }
  const bound = (context: bigint | undefined) => (context !== undefined ? { held: context } : { held, send: held })
  const context = deps.contexts.of(model)
  return context instanceof Promise ? context.then(bound) : bound(context)
}

/** POST /v1/proxy/{chat/completions|completions|embeddings|images/generations|audio/speech}. */
export async function proxyJson(c: Context, deps: ProxyDeps, endpoint: string): Promise<Response> {
  const observed = observe(c, endpoint)
  const { user } = await authenticate(requestHeader(c, 'authorization'), { chain: deps.chain })
  if (observed) observed.user = user
  const declared = Number(requestHeader(c, 'content-length') ?? Number.NaN)
  if (declared > deps.jsonBodyLimit) throw tooLarge(deps.jsonBodyLimit)
  const bytes = await jsonBytes(c, deps.jsonBodyLimit)
  let body: Record<string, unknown>
  try {
    body = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new ProviderError(400, 'invalid_json', 'the request body is not valid JSON')
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new ProviderError(400, 'invalid_request', 'the request body must be a JSON object')
  }
  if (deps.adapters && typeof body.model === 'string') deps.adapters.check(body.model, user)
  // Checked before anything is reserved: max_duration sets what a speech call reserves.
  const speech = endpoint === 'audio/speech' ? speechRequest(body) : undefined
  // Both synchronous for a user and a service read in the last seconds: no turn of the event loop each.
  const servable = deps.admission.service()
  const service = servable instanceof Promise ? await servable : servable
  const prices = pricesOf(service)
  const bounded = outputCap(deps, endpoint, body, typeof body.model === 'string' ? body.model : service.model)
  const cap = bounded instanceof Promise ? await bounded : bounded
  // The worst case is held: a burst of calls cannot together write more than the sub-account can pay.
  const admitted = deps.admission.admit(user, worstCaseFee(endpoint, body, bytes.length, prices, cap.held))
  const release = admitted instanceof Promise ? await admitted : admitted
  deps.observability?.admitted(c)
  let ended = release
  try {
    let forwarded: Buffer = bytes
    const stream = !speech && body.stream === true
    if (observed) {
      observed.model = typeof body.model === 'string' ? body.model : service.model
      observed.stream = stream
    }
    const options = (body.stream_options ?? {}) as Record<string, unknown>
    const clientAskedUsage = options.include_usage === true
    const send = cap.send
    if (typeof body.model !== 'string' || (stream && !clientAskedUsage) || send !== undefined) {
      // The node must see usage to bill a stream; the client sees the usage chunk only if it asked. A text call that
      // nothing else bounds gets the output cap its hold assumed, so its bill cannot exceed what was held.
      const patched: Record<string, unknown> = {
        ...body,
        model: typeof body.model === 'string' ? body.model : service.model,
      }
      if (stream) patched.stream_options = { ...options, include_usage: true }
      if (send !== undefined) patched.max_tokens = Number(send)
      forwarded = Buffer.from(JSON.stringify(patched))
    }
    const signal = clientSignal(c)
    const sent = forwarded
    const backend = await callBackend(deps, endpoint, backendHeaders(c, deps, 'application/json'), () => sent, signal)
    ended = callEnded(deps, backend.backend, release)
    const billing: Billing = {
      user,
      endpoint,
      model: String(body.model ?? service.model),
      prices,
      requestHash: sha256Hex(bytes),
      speech,
      observation: observed,
    }
    return await relay(deps, billing, backend, ended, clientAskedUsage, c, signal)
  } catch (err) {
    ended()
    throw err
  }
}

/**
 * POST /v1/proxy/{audio/transcriptions|audio/translations|images/edits}: the multipart upload is streamed to the
 * backend, hashed on the way, never parsed (an edit therefore reserves MAX_EDIT_IMAGES images: see estimateFee).
 */
export async function proxyMultipart(c: Context, deps: ProxyDeps, endpoint: string): Promise<Response> {
  const observed = observe(c, endpoint)
  const { user } = await authenticate(requestHeader(c, 'authorization'), { chain: deps.chain })
  if (observed) observed.user = user
  const contentType = requestHeader(c, 'content-type') ?? ''
  if (!contentType.startsWith('multipart/form-data')) {
    throw new ProviderError(
      400,
      'invalid_request',
      'this endpoint takes multipart/form-data with its files and a model',
    )
  }
  const declared = Number(requestHeader(c, 'content-length') ?? 0)
  if (declared > deps.uploadLimit) {
    throw new ProviderError(413, 'request_too_large', `the upload is larger than ${deps.uploadLimit} bytes`)
  }
  const service = await deps.admission.service()
  const prices = pricesOf(service)
  const estimate = estimateFee(endpoint, undefined, declared, prices)
  const release = await deps.admission.admit(user, estimate)
  deps.observability?.admitted(c)
  if (observed) observed.model = service.model
  let ended = release
  try {
    const hash = createHash('sha256')
    const source = c.req.raw.body
    let received = 0
    const limit = deps.uploadLimit
    let uploaded!: () => void
    const uploadDone = new Promise<void>((resolve) => {
      uploaded = resolve
    })
    async function* hashed() {
      try {
        if (!source) return
        for await (const chunk of source as unknown as AsyncIterable<Uint8Array>) {
          received += chunk.length
          if (received > limit)
            throw new ProviderError(413, 'request_too_large', `the upload is larger than ${limit} bytes`)
          hash.update(chunk)
          yield chunk
        }
      } finally {
        uploaded()
      }
    }
    const signal = clientSignal(c)
    const backend = await callBackend(
      deps,
      endpoint,
      backendHeaders(c, deps, contentType),
      () => Readable.from(hashed()),
      signal,
      // Refused before any of the upload was read: it can go to another backend whole.
      () => received === 0,
    )
    ended = callEnded(deps, backend.backend, release)
    const { upstream } = backend
    // A transcription needs the whole upload, so by now it has all streamed through the hash.
    if (upstream.statusCode < 400) await uploadDone
    const billing: Billing = {
      user,
      endpoint,
      model: service.model,
      prices,
      requestHash: upstream.statusCode < 400 ? hash.digest('hex') : '',
      // Plain-text transcripts carry no timing: bill the upload as 16 kHz 16-bit mono audio (32 kB a second).
      fallbackSeconds: billableSeconds(received / 32_000),
      observation: observed,
    }
    return await relay(deps, billing, backend, ended, true, c, signal)
  } catch (err) {
    ended()
    throw err
  }
}

/** The request's observation, told its endpoint (absent when the node runs without observability). */
function observe(c: Context, endpoint: string): RequestObservation | undefined {
  const observed = observationOf(c)
  if (observed) observed.endpoint = endpoint
  return observed
}
