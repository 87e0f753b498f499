import { createHash, randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { Context } from 'hono'
import { type Agent, request, errors as undiciErrors } from 'undici'
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
import { relayChunks, streamSink } from '../billing/stream-sink.ts'
import { nodeResponse } from '../http/node-request.ts'
import type { Admission } from './admission.ts'
import { authenticate } from './authenticate.ts'
import type { ChainView } from './chain-view.ts'
import { CORS_HEADERS, corsOnResponse } from './cors.ts'
import { ProviderError } from './provider-error.ts'
import { upstreamError } from './upstream-error.ts'
import type { UsageRecord, UsageStore } from './usage-store.ts'

export type ProxyDeps = {
  /** The OpenAI-compatible backend's base URL, without /v1. */
  backendUrl: string
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
  log: (line: string) => void
}

/** Endpoints whose request is JSON; audio endpoints are multipart and streamed through. */
export const JSON_ENDPOINTS = ['chat/completions', 'completions', 'embeddings', 'images/generations'] as const
export const MULTIPART_ENDPOINTS = ['audio/transcriptions', 'audio/translations'] as const

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
  for (const [k, v] of c.req.raw.headers) {
    if (!STRIPPED.has(k) && !k.startsWith('x-zg-') && !k.startsWith('zg-')) headers[k] = v
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

async function callBackend(
  deps: ProxyDeps,
  endpoint: string,
  headers: Record<string, string>,
  body: Buffer | Readable,
  signal: AbortSignal,
) {
  try {
    return await request(`${deps.backendUrl}/v1/${endpoint}`, {
      method: 'POST',
      headers,
      body,
      dispatcher: deps.dispatcher,
      signal,
      headersTimeout: deps.headersTimeoutMs,
      bodyTimeout: 0,
    })
  } catch (err) {
    if (signal.aborted) throw new ProviderError(499, 'client_closed_request', 'the client closed the request')
    if (err instanceof undiciErrors.HeadersTimeoutError) {
      throw new ProviderError(
        504,
        'upstream_timeout',
        `the model backend sent no response within ${deps.headersTimeoutMs} ms`,
      )
    }
    throw new ProviderError(502, 'backend_unavailable', `the model backend is unreachable: ${(err as Error).message}`)
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
}

/**
 * Signs what was delivered and records it (the fee, when usage is known, and the signature) in one durable commit,
 * before the client sees the end of the response: the signature is then always there when a client asks for it, and
 * nothing the user was charged for is lost on a crash. Signing is local (libsecp256k1, about 35 µs). A signing
 * failure is logged and the response still goes out, unsigned: it was delivered and is billed.
 */
async function finish(
  deps: ProxyDeps,
  billing: Billing,
  resKey: string,
  responseHash: string,
  usage: Usage | undefined,
): Promise<Hex | undefined> {
  const text = `${billing.requestHash}:${responseHash}`
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
  }
  deps.store.recordDelivery({ resKey, usage: record, signature: signature && { text, signature, createdAt } })
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
  upstream: Awaited<ReturnType<typeof request>>,
  abort: AbortController,
  release: () => void,
  clientAskedUsage: boolean,
  c: Context,
): Promise<Response> {
  const contentType = String(upstream.headers['content-type'] ?? 'application/json')
  if (upstream.statusCode >= 400) {
    const text = await upstream.body.text()
    const retryAfter = upstream.headers['retry-after']
    throw upstreamError(upstream.statusCode, text, typeof retryAfter === 'string' ? retryAfter : undefined)
  }
  const resKey = randomUUID()
  if (!contentType.includes('text/event-stream')) {
    const body = Buffer.from(await upstream.body.arrayBuffer())
    let signature: Hex | undefined
    try {
      signature = await finish(
        deps,
        billing,
        resKey,
        sha256Hex(body),
        usageOfResponse(billing.endpoint, contentType, body, billing.fallbackSeconds),
      )
    } finally {
      release()
    }
    const headers: Record<string, string> = { 'content-type': contentType, 'ZG-Res-Key': resKey, ...CORS_HEADERS }
    // The signature the signature route serves, sent along: a client that reads it needs no second round trip.
    if (signature) headers[RES_SIGNATURE] = signature
    corsOnResponse(c)
    return new Response(body, { status: upstream.statusCode, headers })
  }

  const tap = new SseUsageTap({ dropUsageChunk: !clientAskedUsage })
  const hash = createHash('sha256')
  const body = upstream.body
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
    drain: () => body.resume(),
    gone: () => {
      // The client went away: stop the backend at once. Nothing complete was delivered, so nothing is billed.
      if (ended) return
      ended = true
      abort.abort()
      release()
    },
  }
  // Under @hono/node-server, written straight to the Node response: no web-stream hops per event, and the signature
  // can follow the last byte as a trailer.
  const { sink, response } = streamSink(outgoing, upstream.statusCode, headers, hooks)
  const send = (bytes: Uint8Array) => {
    if (!bytes.length) return
    hash.update(bytes)
    if (!sink.write(bytes)) body.pause()
  }
  const end = async (tail: Uint8Array) => {
    if (ended) return
    ended = true
    send(tail)
    let signature: Hex | undefined
    try {
      const usage = tap.usage ? usageFromBody(billing.endpoint, { usage: tap.usage }) : undefined
      signature = await finish(deps, billing, resKey, hash.digest('hex'), usage)
    } catch (err) {
      // Everything was delivered; only the record failed (the store is unwritable). The client's answer still ends
      // properly, unsigned, and the operator sees why.
      deps.log(`recording stream ${resKey} failed: ${(err as Error).message}`)
    } finally {
      release()
      sink.end(signature ? { [RES_SIGNATURE]: signature } : undefined)
    }
  }
  relayChunks(body, (chunk) => send(tap.push(chunk)))
  body.on('end', () => void end(tap.flush()))
  body.on('error', (err) => {
    if (abort.signal.aborted || ended) return
    deps.log(`backend stream failed: ${err.message}`)
    const event = {
      error: {
        message: `the model backend failed mid-stream: ${err.message}`,
        type: 'api_error',
        param: null,
        code: 'upstream_error',
      },
    }
    void end(Buffer.concat([tap.flush(), Buffer.from(`data: ${JSON.stringify(event)}\n\n`)]))
  })
  return response
}

/** The header (non-streamed answers) or trailer (streams) that carries the response's signature. */
const RES_SIGNATURE = 'ZG-Res-Signature'

/** Ties the backend call to the client: if the client disconnects, the backend request is aborted. */
function clientAbort(c: Context): AbortController {
  const abort = new AbortController()
  const signal = c.req.raw.signal
  if (signal.aborted) abort.abort()
  else signal.addEventListener('abort', () => abort.abort(), { once: true })
  return abort
}

/** POST /v1/proxy/{chat/completions|completions|embeddings|images/generations}. */
export async function proxyJson(c: Context, deps: ProxyDeps, endpoint: string): Promise<Response> {
  const { user } = await authenticate(c.req.header('authorization'), { chain: deps.chain })
  const declared = Number(c.req.header('content-length') ?? Number.NaN)
  if (declared > deps.jsonBodyLimit) {
    throw new ProviderError(413, 'request_too_large', `the request body is larger than ${deps.jsonBodyLimit} bytes`)
  }
  const bytes = Buffer.from(await c.req.arrayBuffer())
  if (bytes.length > deps.jsonBodyLimit) {
    throw new ProviderError(413, 'request_too_large', `the request body is larger than ${deps.jsonBodyLimit} bytes`)
  }
  let body: Record<string, unknown>
  try {
    body = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new ProviderError(400, 'invalid_json', 'the request body is not valid JSON')
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new ProviderError(400, 'invalid_request', 'the request body must be a JSON object')
  }
  const service = (await deps.chain.service())!
  const prices = pricesOf(service)
  const release = await deps.admission.admit(user, estimateFee(endpoint, body, bytes.length, prices))
  try {
    let forwarded: Buffer = bytes
    const stream = body.stream === true
    const options = (body.stream_options ?? {}) as Record<string, unknown>
    const clientAskedUsage = options.include_usage === true
    if (typeof body.model !== 'string' || (stream && !clientAskedUsage)) {
      // The node must see usage to bill a stream; the client sees the usage chunk only if it asked.
      const patched: Record<string, unknown> = {
        ...body,
        model: typeof body.model === 'string' ? body.model : service.model,
      }
      if (stream) patched.stream_options = { ...options, include_usage: true }
      forwarded = Buffer.from(JSON.stringify(patched))
    }
    const abort = clientAbort(c)
    const upstream = await callBackend(
      deps,
      endpoint,
      backendHeaders(c, deps, 'application/json'),
      forwarded,
      abort.signal,
    )
    const billing: Billing = {
      user,
      endpoint,
      model: String(body.model ?? service.model),
      prices,
      requestHash: sha256Hex(bytes),
    }
    return await relay(deps, billing, upstream, abort, release, clientAskedUsage, c)
  } catch (err) {
    release()
    throw err
  }
}

/** POST /v1/proxy/audio/transcriptions: the multipart upload is streamed to the backend, hashed on the way. */
export async function proxyMultipart(c: Context, deps: ProxyDeps, endpoint: string): Promise<Response> {
  const { user } = await authenticate(c.req.header('authorization'), { chain: deps.chain })
  const contentType = c.req.header('content-type') ?? ''
  if (!contentType.startsWith('multipart/form-data')) {
    throw new ProviderError(400, 'invalid_request', 'this endpoint takes multipart/form-data with a file and a model')
  }
  const declared = Number(c.req.header('content-length') ?? 0)
  if (declared > deps.uploadLimit) {
    throw new ProviderError(413, 'request_too_large', `the upload is larger than ${deps.uploadLimit} bytes`)
  }
  const service = (await deps.chain.service())!
  const prices = pricesOf(service)
  const estimate = estimateFee(endpoint, undefined, declared, prices)
  const release = await deps.admission.admit(user, estimate)
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
    const abort = clientAbort(c)
    const upstream = await callBackend(
      deps,
      endpoint,
      backendHeaders(c, deps, contentType),
      Readable.from(hashed()),
      abort.signal,
    )
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
    }
    return await relay(deps, billing, upstream, abort, release, true, c)
  } catch (err) {
    release()
    throw err
  }
}
