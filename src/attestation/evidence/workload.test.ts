import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Quote } from '@phala/dcap-qvl'
import { describe, expect, it } from 'vitest'
import { parseAttestationReport } from './attestation-report.ts'
import { dstackEvents } from './event-log.ts'
import { loadMeasurementPolicy, MeasurementPolicyError, parseMeasurementPolicy } from './measurement-policy.ts'
import { quoteMeasurements } from './quote-measurements.ts'
import { checkCompose, checkMeasurements } from './workload.ts'

const vectors = new URL('../../../test/fixtures/tee-vectors/', import.meta.url)
const text = (path: string) => readFileSync(new URL(path, vectors), 'utf8')
const expected = JSON.parse(text('expected.json')) as Record<string, Record<string, string>>

function vector(path: string) {
  const report = parseAttestationReport(text(path))
  return {
    report,
    events: dstackEvents(report.eventLog),
    quote: quoteMeasurements(Quote.parse(report.quoteBytes).report),
  }
}

describe('compose binding', () => {
  for (const path of ['0g/broker_attestation_report.json', '0g/llm_attestation_report.json']) {
    it(`${path}: compose-hash == sha256(app_compose) and mr_config_id == 0x01 ‖ compose_hash`, () => {
      const { report, events, quote } = vector(path)
      const sha = createHash('sha256').update(report.appCompose!).digest('hex')
      expect(events.composeHash).toBe(sha)
      expect(quote.mrConfigId).toBe(`01${sha}`.padEnd(96, '0'))
      const result = checkCompose({ events, appCompose: report.appCompose, mrConfigId: quote.mrConfigId })
      expect(result).toEqual({
        ok: true,
        composeHash: sha,
        appCompose: { ok: true },
        mrConfigId: { ok: true },
        reasons: [],
      })
    })
  }

  it('dstack/tdx-lite-getquote.json: mr_config_id prefix from expected.json, bound to the compose-hash event', () => {
    const { events, quote } = vector('dstack/tdx-lite-getquote.json')
    expect(quote.mrConfigId.startsWith(expected['dstack/tdx-lite-getquote.json']!.mr_config_id_hex_prefix!)).toBe(true)
    const result = checkCompose({ events, mrConfigId: quote.mrConfigId })
    expect(result).toMatchObject({ ok: true, appCompose: undefined, mrConfigId: { ok: true } })
  })

  it('dstack/quote-report.json: a zero mr_config_id is reported as not carried, not as a pass', () => {
    const { events, quote } = vector('dstack/quote-report.json')
    expect(quote.mrConfigId).toMatch(/^0{96}$/)
    expect(checkCompose({ events, mrConfigId: quote.mrConfigId })).toMatchObject({ ok: true, mrConfigId: undefined })
  })

  it('an edited app_compose (tampered JSON) is a compose mismatch', () => {
    const { report, events, quote } = vector('0g/llm_attestation_report.json')
    const edited = report.appCompose!.replace('vllm/vllm-openai', 'evil/vllm-openai')
    expect(edited).not.toBe(report.appCompose)
    const result = checkCompose({ events, appCompose: edited, mrConfigId: quote.mrConfigId })
    expect(result.ok).toBe(false)
    expect(result.appCompose?.ok).toBe(false)
    expect(result.reasons[0]).toMatch(/sha256\(app_compose\) .* != compose-hash event/)
  })

  it('an mr_config_id naming another compose fails', () => {
    const { events } = vector('0g/broker_attestation_report.json')
    const result = checkCompose({ events, mrConfigId: `01${'ab'.repeat(32)}`.padEnd(96, '0') })
    expect(result).toMatchObject({ ok: false, mrConfigId: { ok: false } })
  })

  it('no compose-hash event fails', () => {
    expect(checkCompose({ events: {}, mrConfigId: '00'.repeat(48) }).reasons).toEqual([
      'event log has no compose-hash event',
    ])
  })
})

describe('measurement policy', () => {
  const { events, quote } = vector('0g/llm_attestation_report.json')

  it('says which values were constrained and which were not', () => {
    const result = checkMeasurements(quote, events, {
      mrTd: [quote.mrTd.toUpperCase()],
      composeHashes: [`0x${events.composeHash}`],
      keyProviders: [events.keyProvider!.id],
      rtmr0: [],
    })
    expect(result.ok).toBe(true)
    expect(result.constrained).toEqual(['mrTd', 'composeHashes', 'keyProviders'])
    expect(result.unconstrained).toEqual(['rtmr0', 'rtmr1', 'rtmr2', 'osImageHashes'])
    expect(result.checks.rtmr0).toBe('unconstrained')
  })

  it('fails values outside an allowlist, and absent values under a constraint', () => {
    const result = checkMeasurements(
      quote,
      { ...events, osImageHash: undefined },
      {
        rtmr1: ['00'.repeat(48)],
        osImageHashes: ['1d5283fb98a72814aa092f6041c6ffa8a6785499c479ad6697b07534e6de0c1d'],
        rtmr2: [quote.rtmrs[2]],
      },
    )
    expect(result.ok).toBe(false)
    expect(result.checks).toMatchObject({ rtmr1: 'fail', osImageHashes: 'fail', rtmr2: 'pass' })
    expect(result.reasons).toEqual([
      `rtmr1: ${quote.rtmrs[1]} is not in the allowlist`,
      'osImageHashes: absent is not in the allowlist',
    ])
  })

  it('an empty policy constrains nothing and says so', () => {
    const result = checkMeasurements(quote, events, {})
    expect(result).toMatchObject({ ok: true, constrained: [] })
    expect(result.unconstrained).toHaveLength(7)
  })

  it('loads a policy file; unknown keys and non-hex values are refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'))
    const file = join(dir, 'policy.json')
    writeFileSync(file, JSON.stringify({ composeHashes: [`0x${events.composeHash!.toUpperCase()}`], rtmr0: [] }))
    expect(await loadMeasurementPolicy(file)).toEqual({ composeHashes: [events.composeHash], rtmr0: [] })
    writeFileSync(file, '{')
    await expect(loadMeasurementPolicy(file)).rejects.toThrow(MeasurementPolicyError)
    expect(() => parseMeasurementPolicy({ composeHash: [] })).toThrow(/unknown policy key composeHash/)
    expect(() => parseMeasurementPolicy({ mrTd: ['xyz'] })).toThrow(/hex strings/)
    expect(() => parseMeasurementPolicy([])).toThrow(/object/)
  })
})
