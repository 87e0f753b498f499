import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { AttestationReportError, parseAttestationReport } from './attestation-report.ts'

const vectors = new URL('../../../test/fixtures/tee-vectors/', import.meta.url)
const text = (path: string) => readFileSync(new URL(path, vectors), 'utf8')
const expected = JSON.parse(text('expected.json')) as Record<string, Record<string, string>>

describe('parseAttestationReport', () => {
  it('0G broker /v1/quote: dstack GetQuoteResponse with tcb_info.app_compose', () => {
    const body = JSON.parse(text('0g/broker_attestation_report.json'))
    const report = parseAttestationReport(text('0g/broker_attestation_report.json'))
    expect(report.format).toBe('dstack-quote')
    expect(Buffer.from(report.quoteBytes).toString('hex')).toBe(body.quote)
    expect(report.eventLog).toHaveLength(28)
    expect(report.appCompose).toBe(JSON.parse(body.tcb_info).app_compose)
    expect(report.nvidiaPayload).toBeUndefined()
    // Claims beside the quote are not carried over: report_data and measurements come from the quote only.
    expect(Object.keys(report)).not.toContain('reportData')
  })

  it('0G LLM node: vllm-proxy v1 with info.tcb_info.app_compose and a 1-GPU nvidia_payload', () => {
    const spec = expected['0g/llm_attestation_report.json']!
    const report = parseAttestationReport(JSON.parse(text('0g/llm_attestation_report.json')))
    expect(report).toMatchObject({
      format: 'vllm-proxy',
      signingAddress: spec.signing_address,
      requestNonce: spec.request_nonce,
    })
    expect(report.appCompose).toMatch(/^\{\n {4}"allowed_envs"/)
    expect(report.nvidiaPayload?.evidenceList).toHaveLength(1)
    expect(report.nvidiaPayload?.nonce).toBe(spec.request_nonce)
  })

  it('dstack fixtures: GetQuoteResponse without tcb_info', () => {
    for (const path of ['dstack/quote-report.json', 'dstack/tdx-lite-getquote.json']) {
      const report = parseAttestationReport(text(path))
      expect(report.format).toBe('dstack-quote')
      expect(report.appCompose).toBeUndefined()
    }
  })

  it('unknown shapes are typed errors (CryptoPilot evidence, arrays, non-JSON)', () => {
    expect(() => parseAttestationReport(text('0g/cryptopilot_attestation_report.json'))).toThrow(
      /unknown attestation report shape \(keys: compose_content, evidence/,
    )
    expect(() => parseAttestationReport('[]')).toThrow(AttestationReportError)
    expect(() => parseAttestationReport('nope')).toThrow(/not JSON/)
    expect(() => parseAttestationReport({ quote: 'ab' })).toThrow(/unknown attestation report shape/)
  })

  it('refuses inconsistent or oversized content', () => {
    const llm = JSON.parse(text('0g/llm_attestation_report.json'))
    expect(() =>
      parseAttestationReport({
        ...llm,
        quote: `${llm.quote.slice(0, 100)}${llm.quote[100] === 'a' ? 'b' : 'a'}${llm.quote.slice(101)}`,
      }),
    ).toThrow(/quote and intel_quote differ/)
    expect(() => parseAttestationReport({ ...llm, intel_quote: 'zz', quote: undefined })).toThrow(/quote is not hex/)
    expect(() => parseAttestationReport({ ...llm, intel_quote: '00'.repeat(40_000), quote: undefined })).toThrow(
      /quote over/,
    )
    expect(() => parseAttestationReport({ ...llm, event_log: 'x' })).toThrow(/event log is not JSON/)
    expect(() => parseAttestationReport({ ...llm, nvidia_payload: '{}' })).toThrow(AttestationReportError)
    expect(() => parseAttestationReport(' '.repeat(4 * 1024 * 1024 + 1))).toThrow(/report over/)
    const broker = JSON.parse(text('0g/broker_attestation_report.json'))
    expect(() => parseAttestationReport({ ...broker, tcb_info: '[1]' })).toThrow(/tcb_info is not an object/)
  })
})
