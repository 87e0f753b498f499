import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { bytesToHex, getAddress, type Hex } from 'viem'
import { describe, expect, it } from 'vitest'
import { decodeReportData, encodeReportData, ReportDataError, reportDataFieldBytes } from './report-data.ts'

/** shared/tee-vectors (README there): real attestation reports, read in place and never copied into the repo. */
const VECTORS = process.env.ZG_TEE_VECTORS ?? fileURLToPath(new URL('../../../shared/tee-vectors/', import.meta.url))
const vector = (path: string) => JSON.parse(readFileSync(`${VECTORS}/${path}`, 'utf8'))

/** The 0G broker's TEE signer in 0g/broker_attestation_report.json (tee-verification.md §1.2, expected.json). */
const BROKER_SIGNER = '0xDC1A4da6BdCD90c20d7FF53a6cDc11fBf0E2303C'
/** That report's report_data field, verbatim (base64). */
const BROKER_REPORT_DATA = 'MHhEQzFBNGRhNkJkQ0Q5MGMyMGQ3RkY1M2E2Y0RjMTFmQmYwRTIzMDNDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=='

const SIGNER = getAddress('0x90f79bf6eb2c4f870365e785982e1f101e93b906')
const NONCE: Hex = `0x${'ab'.repeat(31)}cd`

/** The 64 report_data bytes inside a TDX v4 quote: header 48 + offset 520 in the TD report body. */
const quoteReportData = (quoteHex: string) => new Uint8Array(Buffer.from(quoteHex, 'hex').subarray(568, 632))

describe('encodeReportData / decodeReportData', () => {
  it('legacy-ascii-address: ASCII EIP-55 address, NUL-padded to 64 bytes', () => {
    const bytes = encodeReportData('legacy-ascii-address', SIGNER.toLowerCase() as Hex)
    expect(bytes).toHaveLength(64)
    expect(Buffer.from(bytes.subarray(0, 42)).toString('ascii')).toBe(SIGNER)
    expect(bytes.subarray(42).every((b) => b === 0)).toBe(true)
    expect(decodeReportData(bytes)).toEqual({ layout: 'legacy-ascii-address', signer: SIGNER })
    expect(() => encodeReportData('legacy-ascii-address', SIGNER, NONCE)).toThrow(ReportDataError)
  })

  it('signer-nonce: 20-byte address, 12 zero bytes, 32-byte nonce', () => {
    const bytes = encodeReportData('signer-nonce', SIGNER, NONCE)
    expect(bytesToHex(bytes)).toBe(`${SIGNER.toLowerCase()}${'00'.repeat(12)}${NONCE.slice(2)}`)
    expect(decodeReportData(bytes)).toEqual({ layout: 'signer-nonce', signer: SIGNER, nonce: NONCE })
    expect(() => encodeReportData('signer-nonce', SIGNER)).toThrow(ReportDataError)
    expect(() => encodeReportData('signer-nonce', SIGNER, '0x1234')).toThrow(ReportDataError)
  })

  it('decodes the real 0G broker report_data to its signer (legacy layout)', () => {
    const bytes = reportDataFieldBytes(BROKER_REPORT_DATA)
    expect(decodeReportData(bytes)).toEqual({ layout: 'legacy-ascii-address', signer: BROKER_SIGNER })
    expect(encodeReportData('legacy-ascii-address', BROKER_SIGNER)).toEqual(bytes)
  })

  it('rejects shapes that are neither layout', () => {
    const reject = (bytes: Uint8Array) => expect(() => decodeReportData(bytes)).toThrow(ReportDataError)
    reject(new Uint8Array(63))
    reject(new Uint8Array(65))
    reject(new Uint8Array(64)) // all zero: the GCP backend's unbound report_data
    reject(new Uint8Array(64).fill(0x11))
    const ascii = new Uint8Array(64)
    ascii.set(new TextEncoder().encode(`${SIGNER}!`)) // trailing junk after the address
    reject(ascii)
    const short = new Uint8Array(64)
    short.set(new TextEncoder().encode(SIGNER.slice(0, 41))) // 39 hex digits
    reject(short)
  })

  it('reads report_data fields as base64 or hex, and nothing ambiguous', () => {
    const bytes = encodeReportData('signer-nonce', SIGNER, NONCE)
    expect(reportDataFieldBytes(Buffer.from(bytes).toString('base64'))).toEqual(bytes)
    expect(reportDataFieldBytes(bytesToHex(bytes))).toEqual(bytes)
    expect(reportDataFieldBytes(bytesToHex(bytes).slice(2))).toEqual(bytes)
    expect(() => reportDataFieldBytes('1234')).toThrow(ReportDataError)
    expect(() => reportDataFieldBytes(Buffer.from(new Uint8Array(32)).toString('base64'))).toThrow(ReportDataError)
  })
})

describe(`real attestation reports in ${VECTORS}`, () => {
  it('0g/broker_attestation_report.json: report_data field = quote report_data = legacy ASCII signer', () => {
    const report = vector('0g/broker_attestation_report.json')
    expect(report.report_data).toBe(BROKER_REPORT_DATA)
    const fromQuote = quoteReportData(report.quote)
    expect(fromQuote).toEqual(reportDataFieldBytes(report.report_data))
    expect(decodeReportData(fromQuote)).toEqual({ layout: 'legacy-ascii-address', signer: BROKER_SIGNER })
  })

  it('0g/llm_attestation_report.json (vllm-proxy v1): signer ‖ 0^12 ‖ request_nonce', () => {
    const report = vector('0g/llm_attestation_report.json')
    const decoded = decodeReportData(quoteReportData(report.intel_quote))
    expect(decoded).toEqual({
      layout: 'signer-nonce',
      signer: report.signing_address,
      nonce: `0x${report.request_nonce}`,
    })
    expect(encodeReportData('signer-nonce', report.signing_address, `0x${report.request_nonce}`)).toEqual(
      quoteReportData(report.intel_quote),
    )
  })

  it('rejects the layouts we do not accept: dstack lite ASCII key, NEAR v2 sha256(signer‖tls) ‖ nonce', () => {
    const lite = vector('dstack/tdx-lite-getquote.json')
    expect(() => decodeReportData(reportDataFieldBytes(lite.report_data))).toThrow(ReportDataError)
    const near = vector('captured-neardirect-2026-06-29/attestation_report.json')
    expect(() => decodeReportData(quoteReportData(near.intel_quote))).toThrow(ReportDataError)
  })
})
