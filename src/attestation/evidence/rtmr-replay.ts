import { createHash } from 'node:crypto'
import { DSTACK_RUNTIME_EVENT_TYPE, type EventLogEntry, runtimeEventDigest } from './event-log.ts'
import { normalizeHex } from './hex.ts'

export type Rtmrs = readonly [string, string, string, string]

export type RtmrReplayResult = {
  ok: boolean
  /** RTMR0..3 recomputed from the log (lowercase hex). */
  replayed: Rtmrs
  /** Per register: the replay equals the quote's value. */
  matches: readonly [boolean, boolean, boolean, boolean]
  reasons: string[]
}

/** Extends RTMR0..3 from 48 zero bytes: rtmr = sha384(rtmr ‖ digest) (TDX RTMR semantics, tee-verification.md §2.5). */
export function replayDigests(entries: readonly Pick<EventLogEntry, 'imr' | 'digest'>[]): Rtmrs {
  const rtmrs = [0, 1, 2, 3].map(() => Buffer.alloc(48))
  for (const { imr, digest } of entries) {
    // dstack's JS SDK zero-pads short digests; an empty one extends 48 zero bytes, which is what a naive replay of
    // a lite log does (and why it fails).
    const bytes = Buffer.alloc(48)
    Buffer.from(digest, 'hex').copy(bytes)
    rtmrs[imr] = createHash('sha384').update(rtmrs[imr]!).update(bytes).digest()
  }
  return rtmrs.map((r) => r.toString('hex')) as unknown as Rtmrs
}

/**
 * Replays a dstack event log against the RTMRs read from the verified quote. IMR3 runtime events are always
 * recomputed (v1 formula) rather than trusted: an empty digest (dstack 0.6 lite) takes the recomputed value, a
 * given digest that differs is refused, since the event name/payload we later read would then be unbound.
 */
export function replayRtmrs(log: readonly EventLogEntry[], quoteRtmrs: Rtmrs): RtmrReplayResult {
  const reasons: string[] = []
  const digests = log.map((entry, i) => {
    if (entry.imr !== 3 || entry.eventType !== DSTACK_RUNTIME_EVENT_TYPE) {
      if (entry.digest === '') reasons.push(`event ${i} (imr ${entry.imr}) has no digest`)
      return { imr: entry.imr, digest: entry.digest }
    }
    const recomputed = runtimeEventDigest(entry)
    if (entry.digest !== '' && entry.digest !== recomputed) {
      reasons.push(`event ${i} (${entry.event}): digest does not match sha384 of its name and payload`)
    }
    return { imr: entry.imr, digest: recomputed }
  })
  const replayed = replayDigests(digests)
  const matches = replayed.map((r, i) => r === normalizeHex(quoteRtmrs[i]!)) as [boolean, boolean, boolean, boolean]
  matches.forEach((m, i) => {
    if (!m) reasons.push(`rtmr${i} replayed from the event log differs from the quote`)
  })
  return { ok: reasons.length === 0, replayed, matches, reasons }
}
