import { type EnclaveReport, Quote, type TcbStatus, type TDReport10, verify } from '@phala/dcap-qvl'
import { bytesToHex, type Hex } from 'viem'
import type { Collateral } from './collateral.ts'
import { CrlError, checkCollateralCrls } from './crl.ts'

export type { TcbStatus }

/** What a TD's TDATTRIBUTES say (Intel TDX module spec, TD_ATTRIBUTES): bit 0 is DEBUG. */
export type TdAttributes = { raw: Hex; debug: boolean; septVeDisable: boolean }

export type TdMeasurements = {
  mrTd: Hex
  rtmrs: [Hex, Hex, Hex, Hex]
  mrConfigId: Hex
  mrOwner: Hex
  mrOwnerConfig: Hex
  mrSeam: Hex
  tdAttributes: TdAttributes
}

export type SgxMeasurements = { mrEnclave: Hex; mrSigner: Hex; isvProdId: number; isvSvn: number; debug: boolean }

/** A quote whose signature chain to Intel, TCB level and (by default) CRL dates checked out at `now`. */
export type QuoteVerification = {
  status: TcbStatus
  advisoryIds: string[]
  quoteVersion: number
  reportType: 'td10' | 'td15' | 'sgx'
  /** The 64 bytes the TEE bound into the quote (see report-data.ts for the layouts). */
  reportData: Uint8Array
  td: TdMeasurements | undefined
  sgx: SgxMeasurements | undefined
  /** False only when the caller turned the CRL date check off. */
  crlDatesChecked: boolean
  verifiedAt: string
}

export type VerifyQuoteOptions = {
  /**
   * Reject collateral whose CRLs are outside [thisUpdate, nextUpdate] at `now` or not signed by Intel (default
   * true). dcap-qvl does not check this; turn it off only to see the library's own verdict.
   */
  checkCrlDates?: boolean
}

/** Why a quote was not accepted. `message` keeps dcap-qvl's own wording ("TCBInfo expired", …). */
export class QuoteVerificationError extends Error {
  override name = 'QuoteVerificationError'
  /** `quote` (dcap-qvl rejected it) or `crl` (our CRL check did). */
  readonly stage: 'quote' | 'crl'

  constructor(message: string, stage: 'quote' | 'crl') {
    super(message)
    this.stage = stage
  }
}

/**
 * Verifies a DCAP quote (SGX v3, TDX v4/v5) against Intel collateral at `now`, with the Intel SGX Root CA pinned by
 * dcap-qvl. Pure and synchronous (≈10-16 ms of CPU): run it through QuoteVerifier to keep it off the event loop.
 */
export function verifyQuote(
  quote: Uint8Array,
  collateral: Collateral,
  now: Date,
  options: VerifyQuoteOptions = {},
): QuoteVerification {
  let verified: ReturnType<typeof verify>
  let version: number
  try {
    verified = verify(quote, collateral, Math.floor(now.getTime() / 1000))
    version = Quote.parse(quote).header.version
  } catch (err) {
    throw new QuoteVerificationError((err as Error).message, 'quote')
  }
  const checkCrlDates = options.checkCrlDates ?? true
  if (checkCrlDates) {
    try {
      checkCollateralCrls(collateral, now)
    } catch (err) {
      if (err instanceof CrlError) throw new QuoteVerificationError(err.message, 'crl')
      throw err
    }
  }
  const { report } = verified
  const td = report.type === 'td15' ? report.asTd15()?.base : report.type === 'td10' ? report.asTd10() : null
  const sgx = report.type === 'sgx' ? report.asSgx() : null
  return {
    status: verified.status,
    advisoryIds: [...verified.advisory_ids],
    quoteVersion: version,
    reportType: report.type,
    reportData: Uint8Array.from((td ?? sgx)?.reportData ?? []),
    td: td ? tdMeasurements(td) : undefined,
    sgx: sgx ? sgxMeasurements(sgx) : undefined,
    crlDatesChecked: checkCrlDates,
    verifiedAt: now.toISOString(),
  }
}

const hex = (bytes: Uint8Array): Hex => bytesToHex(Uint8Array.from(bytes))

function tdMeasurements(td: TDReport10): TdMeasurements {
  const attrs = td.tdAttributes
  return {
    mrTd: hex(td.mrTd),
    rtmrs: [hex(td.rtMr0), hex(td.rtMr1), hex(td.rtMr2), hex(td.rtMr3)],
    mrConfigId: hex(td.mrConfigId),
    mrOwner: hex(td.mrOwner),
    mrOwnerConfig: hex(td.mrOwnerConfig),
    mrSeam: hex(td.mrSeam),
    tdAttributes: {
      raw: hex(attrs),
      debug: ((attrs[0] ?? 0) & 0x01) !== 0,
      septVeDisable: ((attrs[3] ?? 0) & 0x10) !== 0,
    },
  }
}

function sgxMeasurements(r: EnclaveReport): SgxMeasurements {
  return {
    mrEnclave: hex(r.mrEnclave),
    mrSigner: hex(r.mrSigner),
    isvProdId: r.isvProdId,
    isvSvn: r.isvSvn,
    // SGX ATTRIBUTES.DEBUG is bit 1 of the first byte.
    debug: ((r.attributes[0] ?? 0) & 0x02) !== 0,
  }
}
