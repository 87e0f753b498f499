import { randomBytes } from 'node:crypto'
import { type Address, bytesToHex, type Hex, isAddressEqual } from 'viem'
import { decodeReportData, reportDataFieldBytes } from './report-data.ts'

export type AttestationCheck = {
  /** What the provider says it runs in: `intel-tdx` with a quote, or `none` (an honest dev signer). */
  tee: 'intel-tdx' | 'none' | 'unknown'
  /** report_data names the on-chain TEE signer. */
  signerBound: boolean
  /** report_data carries the nonce we sent, so the quote was made for this check. */
  fresh: boolean
  /**
   * The quote's DCAP signature chain to Intel was checked. Not done here: that needs Intel's collateral and a
   * verifier (dcap-qvl / dstack-verifier), which this machine cannot reach; so attestation stops at L1.
   */
  quoteVerified: false
  detail: string
}

/**
 * Asks a provider for its attestation with a fresh nonce (`/v1/proxy/attestation/report?nonce=`, falling back to
 * the cached broker quote at `/v1/quote`) and checks what can be checked offline: that report_data binds the
 * signer acknowledged on-chain, and whether it binds our nonce.
 */
export async function checkProviderAttestation(params: {
  url: string
  teeSignerAddress: Address
  fetch?: typeof fetch
  timeoutMs?: number
}): Promise<AttestationCheck> {
  const doFetch = params.fetch ?? fetch
  const nonce = bytesToHex(randomBytes(32)) as Hex
  const get = async (path: string) => {
    const res = await doFetch(`${params.url}${path}`, { signal: AbortSignal.timeout(params.timeoutMs ?? 10_000) })
    return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined
  }
  const report =
    (await get(`/v1/proxy/attestation/report?nonce=${nonce}`).catch(() => undefined)) ?? (await get('/v1/quote'))
  if (!report)
    return {
      tee: 'unknown',
      signerBound: false,
      fresh: false,
      quoteVerified: false,
      detail: 'no attestation report served',
    }
  if (report.tee === 'none' || report.quote === null) {
    return {
      tee: 'none',
      signerBound: false,
      fresh: false,
      quoteVerified: false,
      detail: `no hardware quote: ${String(report.message ?? 'the provider does not run in a TEE')}`,
    }
  }
  const field = report.report_data ?? report.intel_quote_report_data
  if (typeof field !== 'string')
    return {
      tee: 'unknown',
      signerBound: false,
      fresh: false,
      quoteVerified: false,
      detail: 'report has no report_data',
    }
  try {
    const decoded = decodeReportData(reportDataFieldBytes(field))
    const signerBound = isAddressEqual(decoded.signer, params.teeSignerAddress)
    const fresh = decoded.nonce !== undefined && decoded.nonce.toLowerCase() === nonce.toLowerCase()
    return {
      tee: 'intel-tdx',
      signerBound,
      fresh,
      quoteVerified: false,
      detail: `${signerBound ? 'report_data binds the on-chain signer' : `report_data names ${decoded.signer}, not the on-chain signer`}; ${fresh ? 'bound to our nonce' : 'not bound to our nonce (a replayable startup quote)'}; DCAP quote signature not verified offline`,
    }
  } catch (err) {
    return {
      tee: 'unknown',
      signerBound: false,
      fresh: false,
      quoteVerified: false,
      detail: `unreadable report_data: ${(err as Error).message}`,
    }
  }
}
