import { type EventLogEntry, parseEventLog } from './event-log.ts'
import { hexBytes } from './hex.ts'
import { type NvidiaPayload, parseNvidiaPayload } from './nvidia-payload.ts'

/**
 * A provider attestation report reduced to what L3 needs. Deliberately absent: the report_data and measurement
 * fields served beside the quote (report_data, tcb_info.mrtd/rtmr*, compose_hash): those are claims, and the
 * quote is taken from the quote bytes, never from a JSON field beside them.
 */
export type AttestationReport = {
  /** `dstack-quote`: 0G broker `/v1/quote` (dstack GetQuoteResponse); `vllm-proxy`: Phala/NEAR/0G LLM node report. */
  format: 'dstack-quote' | 'vllm-proxy'
  quoteBytes: Uint8Array
  eventLog: EventLogEntry[]
  appCompose?: string
  nvidiaPayload?: NvidiaPayload
  signingAddress?: string
  /** vllm-proxy: the nonce the report claims to answer; L2 checks it against the quote's report_data. */
  requestNonce?: string
}

export class AttestationReportError extends Error {
  override name = 'AttestationReportError'
}

export const MAX_REPORT_CHARS = 4 * 1024 * 1024
const MAX_QUOTE_BYTES = 32 * 1024
const MAX_APP_COMPOSE_CHARS = 256 * 1024

/** Recognises a report by its exact shape; anything else is an AttestationReportError, never a guess. */
export function parseAttestationReport(json: unknown): AttestationReport {
  const body = typeof json === 'string' ? parseJson(json) : json
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AttestationReportError('attestation report is not a JSON object')
  }
  const r = body as Record<string, unknown>
  try {
    if (typeof r.intel_quote === 'string' && typeof r.signing_address === 'string') return vllmProxy(r)
    // Our own provider node (tee-signer.ts) serves the dstack shape with signing_address beside it.
    if (typeof r.quote === 'string' && r.event_log !== undefined && r.intel_quote === undefined) return dstack(r)
  } catch (err) {
    if (err instanceof AttestationReportError) throw err
    throw new AttestationReportError((err as Error).message)
  }
  throw new AttestationReportError(`unknown attestation report shape (keys: ${Object.keys(r).slice(0, 12).join(', ')})`)
}

function parseJson(text: string): unknown {
  if (text.length > MAX_REPORT_CHARS) throw new AttestationReportError(`report over ${MAX_REPORT_CHARS} chars`)
  try {
    return JSON.parse(text)
  } catch {
    throw new AttestationReportError('attestation report is not JSON')
  }
}

/** vllm-proxy v1/v2 (tee-verification.md §2.1); 0G LLM nodes repeat the quote under `quote`, which must agree. */
function vllmProxy(r: Record<string, unknown>): AttestationReport {
  if (r.quote !== undefined && r.quote !== r.intel_quote) {
    throw new AttestationReportError('quote and intel_quote differ')
  }
  const info = object(r.info, 'info')
  const tcbInfo = info ? object(info.tcb_info, 'info.tcb_info') : undefined
  const eventLog = r.event_log ?? tcbInfo?.event_log
  if (eventLog === undefined) throw new AttestationReportError('vllm-proxy report has no event_log')
  if (typeof r.request_nonce !== 'string') throw new AttestationReportError('vllm-proxy report has no request_nonce')
  return {
    format: 'vllm-proxy',
    quoteBytes: quote(r.intel_quote as string),
    eventLog: parseEventLog(eventLog),
    appCompose: appCompose(tcbInfo?.app_compose),
    nvidiaPayload: r.nvidia_payload === undefined ? undefined : parseNvidiaPayload(r.nvidia_payload),
    signingAddress: r.signing_address as string,
    requestNonce: r.request_nonce,
  }
}

/** dstack GetQuoteResponse as served by 0G brokers, with tcb_info as a JSON string (or object) when present. */
function dstack(r: Record<string, unknown>): AttestationReport {
  const tcbInfo = object(typeof r.tcb_info === 'string' ? parseJson(r.tcb_info) : r.tcb_info, 'tcb_info')
  return {
    format: 'dstack-quote',
    quoteBytes: quote(r.quote as string),
    eventLog: parseEventLog(r.event_log),
    appCompose: appCompose(tcbInfo?.app_compose),
    nvidiaPayload: r.nvidia_payload === undefined ? undefined : parseNvidiaPayload(r.nvidia_payload),
    ...(typeof r.signing_address === 'string' ? { signingAddress: r.signing_address } : {}),
  }
}

function quote(hex: string): Uint8Array {
  if (hex.length > 2 * MAX_QUOTE_BYTES + 2) throw new AttestationReportError(`quote over ${MAX_QUOTE_BYTES} bytes`)
  return new Uint8Array(hexBytes(hex, 'quote'))
}

function appCompose(value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length > MAX_APP_COMPOSE_CHARS) {
    throw new AttestationReportError('app_compose must be a string of reasonable size')
  }
  return value
}

function object(value: unknown, what: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AttestationReportError(`${what} is not an object`)
  }
  return value as Record<string, unknown>
}
