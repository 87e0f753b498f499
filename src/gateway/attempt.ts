import { errors as undiciErrors } from 'undici'
import { clientAborted } from '../http/node-request.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import { dispatchTarget, UpstreamCall, type UpstreamStart, UpstreamTooLarge } from '../providers/upstream-call.ts'
import type { ForwardRequest, GatewayCore } from './forward.ts'
import { gatewaySideFailure } from './gateway-side-failure.ts'
import { GatewayError } from './http/openai-error.ts'
import { mapProviderError, protocolError, worthFailover } from './provider-refusal.ts'
import { callTimeouts } from './upstream-limits.ts'

/** One provider's answer, started and fit to relay: a stream's headers, or a non-streamed answer whole. */
export type Attempt = {
  entry: CatalogEntry
  call: UpstreamCall
  upstream: UpstreamStart
  /** When the call was sent (performance.now()), for its latency; its headers took firstByteMs. */
  started: number
  firstByteMs: number
  /** A non-streamed answer's body, read within the caps and checked to be what the endpoint promises. */
  body?: Buffer
}

/** This provider failed in a way another might not: the forward loop tries the next one (when it may). */
export class ProviderFailure extends Error {
  override name = 'ProviderFailure'
  readonly error: GatewayError
  /** The provider's Retry-After: it is not chosen again before then. */
  readonly retryAfterMs: number | undefined

  constructor(error: GatewayError, retryAfterMs?: number) {
    super(error.message)
    this.error = error
    this.retryAfterMs = retryAfterMs
  }
}

/** Retry-After in seconds or as an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || !value.trim()) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return seconds > 0 ? Math.min(seconds, 3600) * 1000 : undefined
  const at = Date.parse(value)
  return Number.isNaN(at) || at <= now ? undefined : Math.min(at - now, 3600_000)
}

const clientClosed = () =>
  new GatewayError(499, 'the client closed the request', {
    type: 'invalid_request_error',
    code: 'client_closed_request',
  })

/**
 * Calls one provider, until its answer can be relayed. Throws a ProviderFailure for what is worth trying elsewhere
 * (unreachable, no first byte in time, a 5xx, a 200 that is not what the endpoint promises, an answer over the
 * cap), and a GatewayError for what no other provider would change (the client's own request, the wallet's own
 * trouble). `deadline` (performance.now() ms) bounds the wait for the first byte.
 */
export async function attempt(
  core: GatewayCore,
  req: ForwardRequest,
  entry: CatalogEntry,
  deadline: number,
): Promise<Attempt> {
  const { limits } = core
  const timeouts = callTimeouts(core.timeouts, req.timeouts)
  let renewedToken = false
  const observed = req.observation
  if (observed) {
    observed.provider = entry.provider
    observed.attempts++
  }
  for (;;) {
    const started = performance.now()
    const remaining = Math.max(1, Math.floor(deadline - started))
    // A stream's headers come first; a non-streamed answer's come with it, so they may take the whole deadline.
    const headersMs = req.stream ? Math.min(timeouts.firstByteMs, remaining) : remaining
    const call = new UpstreamCall(req.signal)
    let upstream: UpstreamStart
    try {
      // A provider already in use awaits neither (each await is a turn of a cold call's path).
      if (core.escrow && !core.escrow.isOpen(entry.provider)) await core.escrow.ensureOpen(entry.provider)
      const authorization =
        core.tokens.cachedAuthorization(entry.provider) ?? (await core.tokens.authorization(entry.provider))
      const { origin, path } = dispatchTarget(entry.url)
      // From here on the call waits on the provider: what came before was the gateway's own time.
      if (observed) observed.dispatchedAt = performance.now()
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
          headersTimeout: headersMs,
          bodyTimeout: 0,
        },
        call,
      )
      // The request is on its way and the gateway waits for the provider: the moment for earlier calls' records.
      core.offPath.idle()
      upstream = await call.started
    } catch (err) {
      if (clientAborted(req.signal)) throw clientClosed()
      // The wallet's own trouble (empty ledger, chain down) is no fault of this provider, and no other would fare better.
      const own = gatewaySideFailure(err)
      if (own) throw own
      // A streamed upload the gateway refused on its way (too large, malformed): the client's fault, not the provider's.
      if (err instanceof GatewayError && err.status < 500) throw err
      throw new ProviderFailure(
        err instanceof undiciErrors.HeadersTimeoutError
          ? timedOut(entry, headersMs)
          : err instanceof GatewayError
            ? err
            : new GatewayError(502, `provider ${entry.provider} is unreachable: ${(err as Error).message}`, {
                type: 'api_error',
                code: 'upstream_unreachable',
                headers: { 'x-zg-provider': entry.provider },
              }),
      )
    }
    if (upstream.statusCode >= 400) {
      const text = await call.text(limits.maxErrorBytes).catch((err: Error) => `(unreadable: ${err.message})`)
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
      throw worthFailover(upstream.statusCode) ? new ProviderFailure(error, retryAfterMs(retryAfter)) : error
    }
    const firstByteMs = performance.now() - started
    const contentType = String(upstream.headers['content-type'] ?? '')
    if (req.stream) {
      // An error page or a JSON body where a stream was asked for: nothing reached the client yet, so try another.
      if (!contentType.includes('text/event-stream')) {
        call.abort()
        throw new ProviderFailure(protocolError(entry, `answered ${contentType || 'no content type'}, not a stream`))
      }
      return { entry, call, upstream, started, firstByteMs }
    }
    const body = await wholeBody(call, entry, limits.maxBodyBytes, deadline, req)
    const wrong = notAsPromised(req.endpoint, contentType, body)
    if (wrong) throw new ProviderFailure(protocolError(entry, wrong))
    return { entry, call, upstream, started, firstByteMs, body }
  }
}

function timedOut(entry: CatalogEntry, ms: number): GatewayError {
  return new GatewayError(504, `provider ${entry.provider} sent no response in ${ms} ms`, {
    type: 'api_error',
    code: 'upstream_timeout',
    headers: { 'x-zg-provider': entry.provider },
  })
}

/** A non-streamed answer, whole, within the size cap and the call's deadline. */
async function wholeBody(
  call: UpstreamCall,
  entry: CatalogEntry,
  maxBytes: number,
  deadline: number,
  req: ForwardRequest,
): Promise<Buffer> {
  const ms = Math.max(1, Math.floor(deadline - performance.now()))
  const timer = setTimeout(() => call.abort(new undiciErrors.BodyTimeoutError()), ms)
  try {
    return await call.bytes(maxBytes)
  } catch (err) {
    if (clientAborted(req.signal)) throw clientClosed()
    if (err instanceof UpstreamTooLarge)
      throw new ProviderFailure(
        protocolError(entry, `sent an answer larger than ${maxBytes} bytes`, 'upstream_too_large'),
      )
    if (err instanceof undiciErrors.BodyTimeoutError) throw new ProviderFailure(timedOut(entry, ms))
    throw new ProviderFailure(
      new GatewayError(502, `provider ${entry.provider} failed mid-answer: ${(err as Error).message}`, {
        type: 'api_error',
        code: 'upstream_unreachable',
        headers: { 'x-zg-provider': entry.provider },
      }),
    )
  } finally {
    clearTimeout(timer)
  }
}

/** Endpoints whose answer is audio or may be plain text (subtitles), rather than JSON. */
const AUDIO = new Set(['audio/speech'])
const TEXT_OR_JSON = new Set(['audio/transcriptions', 'audio/translations'])

/** Why a 200 is not what the endpoint promises (wrong content type, JSON that does not parse), or undefined. */
export function notAsPromised(endpoint: string, contentType: string, body: Buffer): string | undefined {
  const type = contentType.toLowerCase()
  if (AUDIO.has(endpoint)) {
    return type.startsWith('audio/') || type.includes('octet-stream')
      ? undefined
      : `answered ${type || 'no content type'}, not audio`
  }
  const json = type.includes('json')
  if (TEXT_OR_JSON.has(endpoint) && !json) {
    return type.startsWith('text/') || type.includes('subrip') ? undefined : `answered ${type || 'no content type'}`
  }
  if (!json) return `answered ${type || 'no content type'}, not JSON`
  try {
    JSON.parse(body.toString('utf8'))
    return undefined
  } catch {
    return 'answered JSON that does not parse'
  }
}
