import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { Hex } from 'viem'
import { providerLevel } from '../attestation/levels.ts'
import { sha256Hex } from '../attestation/response-signature.ts'
import { usageOfAnswer, withUsageCost } from '../billing/fee-annotation.ts'
import { feeOf, usageFromBody } from '../billing/pricing.ts'
import { SSE_HEADERS, SseUsageTap } from '../billing/sse-usage-tap.ts'
import { streamSink } from '../billing/stream-sink.ts'
import { clientAborted } from '../http/node-request.ts'
import { sseErrorEvent } from '../http/sse-error-event.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import { type Delivered, settleAfter } from './account.ts'
import type { Attempt } from './attempt.ts'
import type { ForwardRequest, GatewayCore } from './forward.ts'
import { speechAnswer } from './speech-answer.ts'
import { step } from './steps.ts'
import { callTimeouts } from './upstream-limits.ts'

const ENCODER = new TextEncoder()

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
  tried: number,
): Record<string, string> {
  const level = knownLevel(core, entry)
  if (req.observation) req.observation.verificationLevel = level
  return {
    ...req.responseHeaders,
    'content-type': contentType,
    'x-request-id': req.requestId,
    'x-zg-provider': entry.provider,
    // How many providers this call went to before this one answered, this one included.
    'x-zg-attempts': String(tried),
    'x-zg-verification': level,
    'x-zg-receipt': `/v1/receipts/${req.requestId}`,
  }
}

/** A header or trailer sent once, or null. */
function field(fields: IncomingHttpHeaders, name: string): string | null {
  const value = fields[name]
  return typeof value === 'string' ? value : null
}

/**
 * Relays a provider's answer to the client: a non-streamed one whole (read and checked by the attempt), a stream
 * event by event. Each is recorded (settleAfter) before its last bytes leave. `tried` is how many providers the
 * call went to, this one included.
 */
export function relay(core: GatewayCore, req: ForwardRequest, attempt: Attempt, tried: number): Promise<Response> {
  step('relay')
  return attempt.body
    ? relayWhole(core, req, attempt, attempt.body, tried)
    : Promise.resolve(relayStream(core, req, attempt, tried))
}

async function relayWhole(
  core: GatewayCore,
  req: ForwardRequest,
  { entry, upstream, started, firstByteMs }: Attempt,
  bytes: Buffer,
  tried: number,
): Promise<Response> {
  const contentType = String(upstream.headers['content-type'] ?? 'application/json')
  const resKey = field(upstream.headers, 'zg-res-key')
  {
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
      responseSha256: () => sha256Hex(bytes),
      usage: () => usage,
      resKey,
      signature: field(upstream.headers, 'zg-res-signature') as Hex | null,
      latencyMs,
      firstByteMs,
      deliveredBytes: body.length,
    })
    const clientType = req.translate ? 'application/json' : contentType
    // Nothing leaves before the record is committed (see settleAfter), nor before a stored response is.
    const kept = req.translate?.committed?.()
    await (kept ? Promise.all([recorded, kept]) : recorded)
    return new Response(body, {
      status: 200,
      headers: {
        ...responseHeaders(core, req, entry, clientType, tried),
        ...(fee !== undefined && { 'x-zg-fee': fee.toString() }),
        ...speech?.headers,
      },
    })
  }
}

function relayStream(
  core: GatewayCore,
  req: ForwardRequest,
  { entry, upstream, call, started, firstByteMs }: Attempt,
  tried: number,
): Response {
  const contentType = String(upstream.headers['content-type'])
  const resKey = field(upstream.headers, 'zg-res-key')
  const { idleMs } = callTimeouts(core.timeouts, req.timeouts)
  const { maxStreamBytes, maxSseLineBytes } = core.limits
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
  const failure = (message: string) => (translator ? translator.fail(message) : sseErrorEvent(message))
  // Hashed as it passes, rather than held whole until the end: a long stream costs no memory for its check.
  const hash = createHash('sha256')
  let lastSent = Date.now()
  let keepAlive: NodeJS.Timeout | undefined
  let finished = false
  let deliveredBytes = 0
  const finish = (status: number, cutShort?: Delivered['cutShort']): Promise<void> | undefined => {
    if (finished) return
    finished = true
    clearInterval(keepAlive)
    const latencyMs = performance.now() - started
    if (observed) {
      observed.recordedStatus = status
      observed.chunks = chunks
      observed.firstChunkAt = firstChunkAt
      observed.lastChunkAt = lastReceived
      observed.maxGapMs = maxGapMs
    }
    return settleAfter(core, req, entry, {
      status,
      responseSha256: () => hash.digest('hex'),
      usage: () => (tap.usage ? usageOf(tap.usage) : undefined),
      resKey,
      // A zg-gateway node sends a stream's signature as a trailer; undici has it by the body's end (a stream the
      // provider itself ended with an error event is signed too).
      signature: cutShort ? null : (field(call.trailers, 'zg-res-signature') as Hex | null),
      latencyMs,
      firstByteMs,
      transfer: { bytes: receivedBytes, ms: latencyMs - firstByteMs },
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
  const headers = { ...responseHeaders(core, req, entry, contentType, tried), ...SSE_HEADERS, trailer: 'x-zg-fee' }
  const hooks = { drain: () => call.resume(), gone: clientGone }
  // Under @hono/node-server, written straight to the Node response: no web-stream hops per event.
  const { sink, response } = streamSink(req.outgoing, 200, headers, hooks)
  let receivedBytes = 0
  let lineBytes = 0
  let lastReceived = Date.now()
  // The stream's timings for its metrics, kept here and handed over once at its end: nothing is observed per chunk.
  const observed = req.observation
  let chunks = 0
  let firstChunkAt = 0
  let maxGapMs = 0
  const onData = (chunk: Buffer) => {
    if (finished) return
    const now = Date.now()
    if (now - lastReceived > maxGapMs) maxGapMs = now - lastReceived
    if (chunks++ === 0) firstChunkAt = now
    lastReceived = now
    receivedBytes += chunk.length
    const newline = chunk.lastIndexOf(0x0a)
    lineBytes = newline === -1 ? lineBytes + chunk.length : chunk.length - newline - 1
    if (receivedBytes > maxStreamBytes || lineBytes > maxSseLineBytes) {
      const what =
        receivedBytes > maxStreamBytes ? `a stream over ${maxStreamBytes}` : `an event over ${maxSseLineBytes}`
      return cutOff(`provider ${entry.provider} sent ${what} bytes`)
    }
    hash.update(chunk)
    const out = forClient(tap.push(chunk))
    if (!out.length) return
    lastSent = now
    if (deliveredBytes === 0 && observed) observed.firstByteAt = performance.now()
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
    // A stored response (the translation saw the end) is committed before the end too.
    const kept = req.translate?.committed?.()
    if (kept) recorded = Promise.all([recorded, kept]).then(() => undefined)
    const fee = feeOfUsage(tap.usage)
    const end = () => {
      // [DONE] leaves once the record is committed: a client that saw it has a record, even after a crash.
      if (done?.length) sink.write(done)
      sink.end(fee === undefined ? undefined : { 'x-zg-fee': fee.toString() })
    }
    if (recorded) void recorded.then(end)
    else end()
  }
  /** Ends the stream with an error event: the provider failed, went silent, or sent more than the gateway reads. */
  const cutOff = (message: string) => {
    if (finished) return
    core.router.reportFailure(entry.provider)
    // An unfinished event is dropped, not sent half: the client's parser must read the error event whole.
    tap.flush()
    sink.write(failure(message))
    finish(502, { by: 'connection', reason: message })
    call.abort()
    sink.end()
  }
  const onError = (err: Error) => {
    if (clientAborted(req.signal) || finished) return
    cutOff(`provider ${entry.provider} failed mid-stream: ${err.message}`)
  }
  // The first event, when it came with the headers, goes out before anything the stream needs later is set up.
  call.relay(onData, onEnd, onError)
  // (Unless the stream ended or the client went away already, in the writes above.)
  if (!finished) {
    keepAlive = setInterval(
      () => {
        const now = Date.now()
        if (now - lastReceived >= idleMs) return cutOff(`provider ${entry.provider} sent nothing for ${idleMs} ms`)
        // A comment line: clients ignore it, and it keeps proxies and idle timers from closing a quiet stream.
        if (now - lastSent >= core.keepAliveMs) {
          sink.write(ENCODER.encode(': keep-alive\n\n'))
          lastSent = now
        }
      },
      Math.min(core.keepAliveMs, Math.max(20, Math.floor(idleMs / 4))),
    )
    keepAlive.unref()
  }
  return response
}
