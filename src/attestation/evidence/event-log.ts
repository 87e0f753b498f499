import { createHash } from 'node:crypto'
import { hexBytes, normalizeHex } from './hex.ts'

/** One entry of a dstack event log (`GetQuoteResponse.event_log`, tee-verification.md §2.5). */
export type EventLogEntry = {
  imr: 0 | 1 | 2 | 3
  eventType: number
  /** sha384 hex as served; empty for the IMR3 entries of dstack 0.6 "lite" logs. */
  digest: string
  event: string
  eventPayload: string
}

/** dstack runtime events (IMR3), dstack `cc-eventlog/src/runtime_events.rs` DSTACK_RUNTIME_EVENT_TYPE. */
export const DSTACK_RUNTIME_EVENT_TYPE = 0x08000001

/** Caps: real logs have about 30 entries; payloads are hashes or small JSON. */
export const MAX_EVENT_LOG_ENTRIES = 1024
export const MAX_EVENT_PAYLOAD_BYTES = 64 * 1024
const MAX_EVENT_LOG_JSON_CHARS = 2 * 1024 * 1024

export class EventLogError extends Error {
  override name = 'EventLogError'
}

/** Parses an event log as served: a JSON string (0G broker, dstack) or an already parsed array (vllm-proxy v2). */
export function parseEventLog(input: unknown): EventLogEntry[] {
  let raw = input
  if (typeof input === 'string') {
    if (input.length > MAX_EVENT_LOG_JSON_CHARS) {
      throw new EventLogError(`event log over ${MAX_EVENT_LOG_JSON_CHARS} chars`)
    }
    try {
      raw = JSON.parse(input)
    } catch {
      throw new EventLogError('event log is not JSON')
    }
  }
  if (!Array.isArray(raw)) throw new EventLogError('event log is not an array')
  if (raw.length > MAX_EVENT_LOG_ENTRIES) throw new EventLogError(`event log has over ${MAX_EVENT_LOG_ENTRIES} entries`)
  return raw.map((entry, i) => parseEntry(entry, i))
}

function parseEntry(entry: unknown, i: number): EventLogEntry {
  if (typeof entry !== 'object' || entry === null) throw new EventLogError(`event ${i} is not an object`)
  const { imr, event_type, digest, event, event_payload } = entry as Record<string, unknown>
  if (imr !== 0 && imr !== 1 && imr !== 2 && imr !== 3) throw new EventLogError(`event ${i}: imr must be 0..3`)
  if (typeof event_type !== 'number' || !Number.isInteger(event_type) || event_type < 0 || event_type > 0xffffffff) {
    throw new EventLogError(`event ${i}: event_type must be a u32`)
  }
  if (typeof digest !== 'string' || !/^(0x)?([0-9a-fA-F]{96})?$/.test(digest)) {
    throw new EventLogError(`event ${i}: digest must be empty or 48 bytes of hex`)
  }
  const name = event ?? ''
  const payload = event_payload ?? ''
  if (typeof name !== 'string' || name.length > 256) throw new EventLogError(`event ${i}: bad event name`)
  if (typeof payload !== 'string' || payload.length > 2 * MAX_EVENT_PAYLOAD_BYTES || !/^[0-9a-fA-F]*$/.test(payload)) {
    throw new EventLogError(`event ${i}: event_payload must be hex of at most ${MAX_EVENT_PAYLOAD_BYTES} bytes`)
  }
  if (payload.length % 2 !== 0) throw new EventLogError(`event ${i}: event_payload has odd length`)
  return { imr, eventType: event_type, digest: normalizeHex(digest), event: name, eventPayload: payload.toLowerCase() }
}

/**
 * The v1 digest of a dstack runtime event: sha384(le32(event_type) ‖ ":" ‖ event ‖ ":" ‖ payload bytes)
 * (dstack `cc-eventlog`, tee-verification.md §2.5). The v2 JCS form is not produced by any dstack we have seen.
 */
export function runtimeEventDigest(entry: Pick<EventLogEntry, 'eventType' | 'event' | 'eventPayload'>): string {
  const type = Buffer.alloc(4)
  type.writeUInt32LE(entry.eventType)
  return createHash('sha384')
    .update(type)
    .update(':')
    .update(entry.event, 'utf8')
    .update(':')
    .update(hexBytes(entry.eventPayload, 'event_payload'))
    .digest('hex')
}

/** The dstack events that identify the workload, read from IMR3 runtime events. */
export type DstackEvents = {
  composeHash?: string
  appId?: string
  instanceId?: string
  osImageHash?: string
  /** The `key-provider` payload, JSON `{name, id}` naming the KMS (id = hex of its public key or measurement). */
  keyProvider?: { name: string; id: string }
}

const HEX_EVENTS = {
  'compose-hash': 'composeHash',
  'app-id': 'appId',
  'instance-id': 'instanceId',
  'os-image-hash': 'osImageHash',
} as const

/**
 * Reads the named dstack events. Only meaningful after the log replayed to the quote's RTMR3, which is what binds
 * these payloads. A name seen twice is refused: which one the workload meant would be a guess.
 */
export function dstackEvents(log: readonly EventLogEntry[]): DstackEvents {
  const out: DstackEvents = {}
  const seen = new Set<string>()
  for (const entry of log) {
    if (entry.imr !== 3 || entry.eventType !== DSTACK_RUNTIME_EVENT_TYPE) continue
    const key = Object.hasOwn(HEX_EVENTS, entry.event) ? HEX_EVENTS[entry.event as keyof typeof HEX_EVENTS] : undefined
    if (key === undefined && entry.event !== 'key-provider') continue
    if (seen.has(entry.event)) throw new EventLogError(`event ${entry.event} appears twice`)
    seen.add(entry.event)
    if (key !== undefined) out[key] = entry.eventPayload
    else out.keyProvider = parseKeyProvider(entry.eventPayload)
  }
  return out
}

function parseKeyProvider(payloadHex: string): { name: string; id: string } {
  try {
    const parsed = JSON.parse(Buffer.from(payloadHex, 'hex').toString('utf8')) as Record<string, unknown>
    if (typeof parsed.name === 'string' && typeof parsed.id === 'string') return { name: parsed.name, id: parsed.id }
  } catch {}
  throw new EventLogError('key-provider payload is not JSON {name, id}')
}
