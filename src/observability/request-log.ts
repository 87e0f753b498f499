import type { Logger } from './logger.ts'

/**
 * What one gateway request went through, filled in as it goes (the app, the router, the attempt, the relay, the
 * record) and read once it is over, for its log line and its metrics. Every field is set up front so the object
 * keeps one shape: the parts of the path that write to it stay monomorphic.
 */
export class RequestObservation {
  /** performance.now() at arrival. */
  readonly start = performance.now()
  readonly requestId: string
  readonly method: string
  /** The route's pattern (`/v1/chat/completions`), known once it ran. */
  route = ''
  keyId: string | null = null
  /** On a provider node: the paying user's address (from the session token, never the token), and its admission. */
  user = ''
  admitted = false
  model = ''
  endpoint = ''
  stream = false
  /** The provider of the last attempt (the one that answered, when one did). */
  provider = ''
  attempts = 0
  /** The HTTP status the client got. */
  status = 0
  /** What the call's record says, when it differs from the HTTP status (a stream cut short after its 200). */
  recordedStatus = 0
  /** The error code of an error answer, and why the gateway refused the call (see refusalReason). */
  errorCode: string | null = null
  /** Set where the code alone cannot tell: `verification_policy` when no provider met the call's requirement. */
  refusal: string | null = null
  inputUnits = 0n
  outputUnits = 0n
  /** Whether the units are tokens (chat, completions, embeddings), not images or seconds of audio. */
  tokens = false
  fee: bigint | null = null
  /** `pending` (checked off the path), or `unverifiable` (a stream cut short); the level the provider's signer has. */
  verification: string | null = null
  verificationLevel: string | null = null
  /** performance.now() when the current attempt was dispatched, and the time spent waiting on providers in all. */
  dispatchedAt = 0
  upstreamMs = 0
  /** performance.now() when the first byte of the answer left for the client; 0: none did (an error answer). */
  firstByteAt = 0
  /** A stream's chunks from the provider: how many, the first and last arrival (Date.now()), the longest gap. */
  chunks = 0
  firstChunkAt = 0
  lastChunkAt = 0
  maxGapMs = 0
  /** performance.now() when the request was over (its last byte written, or the client gone). */
  end = 0

  constructor(requestId: string, method: string) {
    this.requestId = requestId
    this.method = method
  }

  get totalMs(): number {
    return this.end - this.start
  }

  /** Time to the client's first byte; for an error answer, the whole request. */
  get firstByteMs(): number {
    return (this.firstByteAt || this.end) - this.start
  }

  /** The gateway's own time before the first byte: everything but the waits on providers. */
  get overheadMs(): number {
    return Math.max(0, this.firstByteMs - this.upstreamMs)
  }
}

/**
 * Why the gateway answered with an error, in a word for the refusals metric and the log: `auth`, `budget`,
 * `rate_limit`, `key_policy`, `verification_policy`, `unknown_model`, `no_provider`, `provider_refusal` (a provider
 * answered with an error), `provider_failure` (unreachable, timed out, broken answers), `wallet` (the gateway's own
 * wallet or chain), `client_closed`, `invalid_request`, `not_found`, `error`.
 */
export function refusalReason(o: RequestObservation): string {
  const code = o.errorCode
  if (o.refusal) return o.refusal
  if (o.status === 401 || code === 'invalid_api_key') return 'auth'
  if (o.status === 499 || code === 'client_closed_request') return 'client_closed'
  if (code === 'insufficient_quota') return 'budget'
  if (code === 'model_not_allowed') return 'key_policy'
  if (code === 'insufficient_ledger_balance' || code === 'insufficient_wallet_balance' || code === 'chain_unavailable')
    return 'wallet'
  // An attempt was made: whatever went wrong went wrong at a provider.
  if (o.attempts > 0) return code !== null && PROVIDER_FAILURES.has(code) ? 'provider_failure' : 'provider_refusal'
  if (code === 'rate_limit_exceeded') return 'rate_limit'
  if (code === 'model_not_found') return 'unknown_model'
  if (code === 'no_provider_available') return 'no_provider'
  if (o.status === 404 || o.status === 405) return 'not_found'
  return o.status >= 500 ? 'error' : 'invalid_request'
}

const PROVIDER_FAILURES = new Set([
  'upstream_unreachable',
  'upstream_timeout',
  'upstream_error',
  'upstream_protocol_error',
  'upstream_too_large',
])

const ms = (n: number) => Math.round(n * 10) / 10

/**
 * The request's one log line: who (request id, key id, never the key), what (model, endpoint, stream), where
 * (provider, attempts), how it ended (status, the refusal's reason), what it cost (units, the fee in neuron as a
 * string: money is bigint), its check as known when it ended (`pending`: the check runs after the answer, see
 * docs/operations.md), and its timings.
 */
export function logRequest(
  logger: Logger,
  o: RequestObservation,
  reason: string | null,
  caller: 'key' | 'user' = 'key',
): void {
  const fields: Record<string, unknown> = { requestId: o.requestId }
  // A gateway's caller is an API key (its id); a provider node's, a wallet (its address).
  if (caller === 'key') fields.keyId = o.keyId
  else fields.user = o.user || null
  fields.method = o.method
  if (o.route) fields.route = o.route
  fields.status = o.status
  if (o.endpoint) {
    fields.endpoint = o.endpoint
    fields.model = o.model
    fields.stream = o.stream
  }
  if (o.provider) {
    fields.provider = o.provider
    fields.attempts = o.attempts
  }
  if (o.recordedStatus && o.recordedStatus !== o.status) fields.recordedStatus = o.recordedStatus
  if (reason) {
    fields.reason = reason
    fields.errorCode = o.errorCode
  }
  if (o.fee !== null) {
    fields[o.tokens ? 'inputTokens' : 'inputUnits'] = Number(o.inputUnits)
    fields[o.tokens ? 'outputTokens' : 'outputUnits'] = Number(o.outputUnits)
    fields.fee = o.fee.toString()
  }
  if (o.verification) fields.verification = { status: o.verification, level: o.verificationLevel }
  fields.timings = {
    totalMs: ms(o.totalMs),
    firstByteMs: ms(o.firstByteMs),
    overheadMs: ms(o.overheadMs),
    ...(o.upstreamMs > 0 && { upstreamMs: ms(o.upstreamMs) }),
  }
  if (o.status >= 500) logger.warn(fields, 'request')
  else logger.info(fields, 'request')
}
