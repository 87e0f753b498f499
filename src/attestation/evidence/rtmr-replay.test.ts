import { readFileSync } from 'node:fs'
import { Quote } from '@phala/dcap-qvl'
import { describe, expect, it } from 'vitest'
import { dstackEvents, EventLogError, parseEventLog, runtimeEventDigest } from './event-log.ts'
import { quoteMeasurements } from './quote-measurements.ts'
import { replayDigests, replayRtmrs } from './rtmr-replay.ts'

const vectors = new URL('../../../test/fixtures/tee-vectors/', import.meta.url)
const json = (path: string) => JSON.parse(readFileSync(new URL(path, vectors), 'utf8')) as Record<string, unknown>
const expected = json('expected.json') as Record<string, Record<string, string>>

/** Event log and quote measurements of a vector; the RTMRs come from the quote bytes only. */
function vector(path: string) {
  const report = json(path)
  const quoteHex = (report.intel_quote ?? report.quote) as string
  return {
    log: parseEventLog(report.event_log),
    quote: quoteMeasurements(Quote.parse(Buffer.from(quoteHex, 'hex')).report),
  }
}

describe('RTMR replay of the vendored dstack and 0G event logs', () => {
  for (const path of [
    'dstack/quote-report.json',
    'dstack/tdx-lite-getquote.json',
    '0g/broker_attestation_report.json',
    '0g/llm_attestation_report.json',
  ]) {
    it(`${path}: RTMR0..3 replay to the quote`, () => {
      const { log, quote } = vector(path)
      const result = replayRtmrs(log, quote.rtmrs)
      expect(result.reasons).toEqual([])
      expect(result.ok).toBe(true)
      expect(result.matches).toEqual([true, true, true, true])
      expect(result.replayed).toEqual(quote.rtmrs)
    })
  }

  it('dstack/quote-report.json: every IMR3 digest equals the v1 formula with type 0x08000001', () => {
    const imr3 = vector('dstack/quote-report.json').log.filter((e) => e.imr === 3)
    expect(imr3.length).toBeGreaterThan(5)
    for (const entry of imr3) {
      expect(entry.eventType).toBe(0x08000001)
      expect(runtimeEventDigest(entry)).toBe(entry.digest)
    }
  })

  it('dstack/tdx-lite-getquote.json: digests as given fail on rtmr3 only; recomputed they pass', () => {
    const { log, quote } = vector('dstack/tdx-lite-getquote.json')
    expect(log.filter((e) => e.imr === 3).every((e) => e.digest === '')).toBe(true)
    const asGiven = replayDigests(log)
    expect(asGiven.slice(0, 3)).toEqual(quote.rtmrs.slice(0, 3))
    expect(asGiven[3]).not.toBe(quote.rtmrs[3])
    expect(replayRtmrs(log, quote.rtmrs).ok).toBe(true)
  })

  it('reads the named dstack events (compose-hash values from expected.json)', () => {
    const quoteReport = dstackEvents(vector('dstack/quote-report.json').log)
    expect(quoteReport.composeHash).toBe(expected['dstack/quote-report.json']!.compose_hash_event)
    expect(quoteReport.keyProvider?.name).toBe('local-sgx')
    const lite = dstackEvents(vector('dstack/tdx-lite-getquote.json').log)
    expect(lite.composeHash).toBe(expected['dstack/tdx-lite-getquote.json']!.compose_hash_event)
    expect(lite).toMatchObject({
      appId: '86b0e55f2fa8e4fb69d890f14f54d5612707646e',
      instanceId: '050bf89570575fe8fab4cb8f0a62a9e64efe8ead',
      osImageHash: '07a2388c7a6a1b6a646d443f1517990a4ec294471d63146cda9d56972765051d',
      keyProvider: { name: 'kms' },
    })
  })

  it('a flipped byte in an IMR3 payload breaks the replay (given digest no longer matches)', () => {
    const { log, quote } = vector('dstack/quote-report.json')
    const i = log.findIndex((e) => e.event === 'compose-hash')
    const tampered = log.map((e, j) => (j === i ? { ...e, eventPayload: flipFirstByte(e.eventPayload) } : e))
    const result = replayRtmrs(tampered, quote.rtmrs)
    expect(result.ok).toBe(false)
    expect(result.reasons.join('\n')).toMatch(/compose-hash.*digest does not match/)
  })

  it('a flipped byte in a lite (empty-digest) payload gives an rtmr3 mismatch', () => {
    const { log, quote } = vector('dstack/tdx-lite-getquote.json')
    const tampered = log.map((e) =>
      e.event === 'compose-hash' ? { ...e, eventPayload: flipFirstByte(e.eventPayload) } : e,
    )
    const result = replayRtmrs(tampered, quote.rtmrs)
    expect(result.matches).toEqual([true, true, true, false])
    expect(result.reasons).toEqual(['rtmr3 replayed from the event log differs from the quote'])
  })

  it('a changed boot-time digest gives an rtmr0 mismatch', () => {
    const { log, quote } = vector('0g/broker_attestation_report.json')
    const tampered = log.map((e, j) => (j === 0 ? { ...e, digest: flipFirstByte(e.digest) } : e))
    expect(replayRtmrs(tampered, quote.rtmrs).matches).toEqual([false, true, true, true])
  })
})

describe('event log parsing', () => {
  it('refuses malformed entries and duplicate named events', () => {
    expect(() => parseEventLog('not json')).toThrow(EventLogError)
    expect(() => parseEventLog({})).toThrow(/not an array/)
    expect(() => parseEventLog([{ imr: 4, event_type: 1, digest: '', event: '', event_payload: '' }])).toThrow(/imr/)
    expect(() => parseEventLog([{ imr: 0, event_type: 1, digest: 'ab', event: '', event_payload: '' }])).toThrow(
      /digest/,
    )
    expect(() => parseEventLog([{ imr: 3, event_type: 1, digest: '', event: 'x', event_payload: 'zz' }])).toThrow(
      /payload/,
    )
    expect(() => parseEventLog(Array.from({ length: 1025 }, () => ({})))).toThrow(/1024/)
    const { log } = vector('0g/broker_attestation_report.json')
    const twice = [...log, log.find((e) => e.event === 'compose-hash')!]
    expect(() => dstackEvents(twice)).toThrow(/compose-hash appears twice/)
  })
})

function flipFirstByte(hex: string): string {
  return ((Number.parseInt(hex.slice(0, 2), 16) ^ 1).toString(16).padStart(2, '0') + hex.slice(2)).toLowerCase()
}
