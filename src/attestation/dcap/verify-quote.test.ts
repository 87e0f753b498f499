import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Quote } from '@phala/dcap-qvl'
import { bytesToHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { type Collateral, parseCollateral } from './collateral.ts'
import { QuoteVerificationError, verifyQuote } from './verify-quote.ts'

/** Vendored vectors (test/fixtures/tee-vectors/README.md), driven by their expected.json. */
const VECTORS = fileURLToPath(new URL('../../../test/fixtures/tee-vectors/', import.meta.url))
/** The AGPL NEAR capture is not vendored: read from ../shared when present (README there). */
const SHARED = process.env.ZG_TEE_VECTORS ?? fileURLToPath(new URL('../../../../shared/tee-vectors/', import.meta.url))
const AGPL_COLLATERAL = `${SHARED}/captured-neardirect-2026-06-29/intel_collateral_fmspc_90c06f000000.json`

const expected = JSON.parse(readFileSync(`${VECTORS}/expected.json`, 'utf8'))
const quoteOf = (name: string) => new Uint8Array(readFileSync(`${VECTORS}/${name}`))
const collateralOf = (path: string): Collateral => parseCollateral(JSON.parse(readFileSync(path, 'utf8')))

function rejection(run: () => unknown): QuoteVerificationError {
  try {
    run()
  } catch (err) {
    expect(err).toBeInstanceOf(QuoteVerificationError)
    return err as QuoteVerificationError
  }
  throw new Error('expected a rejection')
}

describe('verifyQuote on the Intel DCAP sample vectors', () => {
  const tdx = expected['intel-dcap/tdx_quote.bin']
  const tdxQuote = quoteOf('intel-dcap/tdx_quote.bin')
  const tdxCollateral = collateralOf(`${VECTORS}/${tdx.collateral}`)
  const at = new Date(tdx.now)

  it('TDX v4: status, version, type, report_data and mr_td as expected.json says', () => {
    const r = verifyQuote(tdxQuote, tdxCollateral, at)
    expect(r.status).toBe(tdx.status)
    expect(r.advisoryIds).toEqual(tdx.advisory_ids)
    expect(r.quoteVersion).toBe(tdx.quote_version)
    expect(r.reportType).toBe(tdx.report_type)
    expect(bytesToHex(r.reportData).slice(2)).toBe(tdx.report_data_hex)
    expect(r.td?.mrTd.slice(2)).toBe(tdx.mr_td_hex)
    expect(r.td?.rtmrs).toHaveLength(4)
    expect(r.td?.tdAttributes).toEqual({ raw: '0x0000001000000000', debug: false, septVeDisable: true })
    expect(r.crlDatesChecked).toBe(true)
  })

  it('rejects outside the collateral window, with the library messages', () => {
    const [from, to] = tdx.collateral_window.map((t: string) => new Date(t))
    const after = new Date(to.getTime() + 1000)
    const before = new Date(from.getTime() - 1000)
    expect(tdx.negative.now_after_window).toBe('reject: TCBInfo expired')
    expect(rejection(() => verifyQuote(tdxQuote, tdxCollateral, after)).message).toBe('TCBInfo expired')
    expect(tdx.negative.now_before_issue).toBe('reject: TCBInfo issue date is in the future')
    expect(rejection(() => verifyQuote(tdxQuote, tdxCollateral, before)).message).toBe(
      'TCBInfo issue date is in the future',
    )
  })

  it('rejects tampered quotes and collateral, as expected.json lists', () => {
    const flip = (byte: number) => {
      const q = Uint8Array.from(tdxQuote)
      q[byte] = (q[byte] ?? 0) ^ 0x01
      return q
    }
    const message = (run: () => unknown) => `reject: ${rejection(run).message}`
    expect(message(() => verifyQuote(flip(568), tdxCollateral, at))).toBe(
      tdx.negative['flip_bit_in_report_data_(byte_568)'],
    )
    expect(message(() => verifyQuote(flip(184), tdxCollateral, at))).toBe(tdx.negative['flip_bit_in_mr_td_(byte_184)'])
    const edited = { ...tdxCollateral, tcb_info: tdxCollateral.tcb_info.replace('"UpToDate"', '"OutOfDate"') }
    expect(edited.tcb_info).not.toBe(tdxCollateral.tcb_info)
    expect(message(() => verifyQuote(tdxQuote, edited, at))).toBe(tdx.negative.tcb_info_json_edited)
    expect(message(() => verifyQuote(tdxQuote.subarray(0, 600), tdxCollateral, at))).toBe(
      tdx.negative.truncated_to_600_bytes,
    )
  })

  it('CRL dates: a PCK CRL past its nextUpdate is rejected while the TCB info is still valid', () => {
    // The sample PCK CRL's nextUpdate (2025-07-19T10:00:35Z) comes 15 minutes before the TCB info's.
    const gap = new Date('2025-07-19T10:10:00Z')
    const err = rejection(() => verifyQuote(tdxQuote, tdxCollateral, gap))
    expect(err.stage).toBe('crl')
    expect(err.message).toMatch(/^CRL expired: pck_crl nextUpdate 2025-07-19T10:00:35.000Z/)
    // dcap-qvl alone accepts it: that is the gap the check closes.
    expect(verifyQuote(tdxQuote, tdxCollateral, gap, { checkCrlDates: false }).status).toBe('UpToDate')
  })

  it('rejects a CRL whose signature does not verify', () => {
    const crl = Buffer.from(tdxCollateral.pck_crl as string, 'hex')
    crl[crl.length - 10] = (crl[crl.length - 10] ?? 0) ^ 0x01
    const err = rejection(() => verifyQuote(tdxQuote, { ...tdxCollateral, pck_crl: crl.toString('hex') }, at))
    expect(err.message).toMatch(/^CRL signature is invalid: pck_crl/)
  })

  it('SGX v3: status and advisories', () => {
    const sgx = expected['intel-dcap/sgx_quote.bin']
    const r = verifyQuote(
      quoteOf('intel-dcap/sgx_quote.bin'),
      collateralOf(`${VECTORS}/${sgx.collateral}`),
      new Date(sgx.now),
    )
    expect(r.status).toBe(sgx.status)
    expect(r.advisoryIds).toEqual(sgx.advisory_ids)
    expect(r.reportType).toBe(sgx.report_type)
    expect(r.quoteVersion).toBe(3)
    expect(r.sgx?.debug).toBe(false)
    expect(r.td).toBeUndefined()
  })

  it('TDX v5 (TD15): the rejection dcap-qvl 0.3.9 was observed to give', () => {
    const v5 = expected['intel-dcap/tdx_quote_v5_outdated.bin']
    const collateral = collateralOf(`${VECTORS}/${v5.collateral}`)
    const err = rejection(() =>
      verifyQuote(quoteOf('intel-dcap/tdx_quote_v5_outdated.bin'), collateral, new Date(v5.now)),
    )
    expect(`reject: ${err.message}`).toBe(v5.observed['@phala/dcap-qvl 0.3.9'])
    expect(err.stage).toBe('quote')
  })
})

describe('the 0G CryptoPilot (Alibaba Cloud TDX) report: a parse-only vector', () => {
  it('holds a v5 TD15 quote whose report_data begins as expected.json says; no collateral here matches it', () => {
    const want = expected['0g/cryptopilot_attestation_report.json']
    const report = JSON.parse(readFileSync(`${VECTORS}/0g/cryptopilot_attestation_report.json`, 'utf8'))
    const evidence = JSON.parse(Buffer.from(report.evidence, 'base64').toString('utf8'))
    const quote = new Uint8Array(Buffer.from(evidence.quote, 'base64'))
    const parsed = Quote.parse(quote)
    expect(parsed.header.version).toBe(want.quote_version)
    expect(parsed.report.type).toBe(want.report_type)
    const reportData = (parsed.report.data as { base: { reportData: Uint8Array } }).base.reportData
    expect(bytesToHex(reportData).slice(2).startsWith(want.report_data_hex_prefix)).toBe(true)
    // Verified against another platform's collateral it is refused, never passed.
    const tdx = expected['intel-dcap/tdx_quote.bin']
    const err = rejection(() => verifyQuote(quote, collateralOf(`${VECTORS}/${tdx.collateral}`), new Date(tdx.now)))
    expect(err.message.length).toBeGreaterThan(0)
  })
})

describe('real 0G quotes with the 2026-06 Intel collateral (AGPL capture, read from ../shared)', () => {
  const broker = JSON.parse(readFileSync(`${VECTORS}/0g/broker_attestation_report.json`, 'utf8'))
  const llm = JSON.parse(readFileSync(`${VECTORS}/0g/llm_attestation_report.json`, 'utf8'))

  it('broker UpToDate, LLM node OutOfDate with 5 advisories; our CRL check rejects the assembled old root CRL', () => {
    if (!existsSync(AGPL_COLLATERAL)) {
      console.log(`${AGPL_COLLATERAL} absent: DCAP checks of the 0G broker and LLM quotes not run`)
      // What runs without it: both are well-formed TDX v4 quotes (the signature checks need the collateral).
      expect(Buffer.from(broker.quote, 'hex').readUInt16LE(0)).toBe(4)
      expect(Buffer.from(llm.intel_quote, 'hex').readUInt16LE(0)).toBe(4)
      return
    }
    const collateral = collateralOf(AGPL_COLLATERAL)
    const b = expected['0g/broker_attestation_report.json']
    const l = expected['0g/llm_attestation_report.json']
    const now = new Date('2026-06-29T02:06:37Z')
    expect(b.dcap_with).toContain('2026-06-29T02:06:37Z')
    const brokerQuote = Buffer.from(broker.quote, 'hex')
    const llmQuote = Buffer.from(llm.intel_quote, 'hex')
    const lib = { checkCrlDates: false }
    expect(verifyQuote(brokerQuote, collateral, now, lib)).toMatchObject({
      status: b.dcap_status,
      advisoryIds: b.advisory_ids,
    })
    expect(verifyQuote(llmQuote, collateral, now, lib)).toMatchObject({
      status: l.dcap_status,
      advisoryIds: l.advisory_ids,
    })
    // The assembled collateral carries dcap-qvl's 2025 root CA CRL (nextUpdate 2026-04-03): an artifact of how it
    // was assembled, rejected as Rust/wasm dcap-qvl reject it (CrlExpired).
    for (const quote of [brokerQuote, llmQuote]) {
      const err = rejection(() => verifyQuote(quote, collateral, now))
      expect(err.message).toMatch(/^CRL expired: root_ca_crl nextUpdate 2026-04-03T11:21:57.000Z/)
    }
  })
})
