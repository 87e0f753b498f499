import { parseCrl } from './crl.ts'

/**
 * Intel DCAP collateral in dcap-qvl's `QuoteCollateralV3` JSON shape (tee-verification.md §4.1): PEM issuer chains,
 * DER CRLs and signatures as hex (or byte arrays), and the TCB info and QE identity as the exact JSON strings Intel
 * signed (re-serialising them breaks their signatures).
 */
export type Collateral = {
  pck_crl_issuer_chain: string
  root_ca_crl: string | number[]
  pck_crl: string | number[]
  tcb_info_issuer_chain: string
  tcb_info: string
  tcb_info_signature: string | number[]
  qe_identity_issuer_chain: string
  qe_identity: string
  qe_identity_signature: string | number[]
}

const FIELDS = [
  'pck_crl_issuer_chain',
  'root_ca_crl',
  'pck_crl',
  'tcb_info_issuer_chain',
  'tcb_info',
  'tcb_info_signature',
  'qe_identity_issuer_chain',
  'qe_identity',
  'qe_identity_signature',
] as const

export class CollateralError extends Error {
  override name = 'CollateralError'
}

/** Checks a parsed JSON value has every collateral field, as a string or a byte array. */
export function parseCollateral(value: unknown): Collateral {
  if (typeof value !== 'object' || value === null) throw new CollateralError('collateral is not a JSON object')
  const record = value as Record<string, unknown>
  const out: Record<string, string | number[]> = {}
  for (const field of FIELDS) {
    const v = record[field]
    if (typeof v === 'string' || (Array.isArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b < 256))) {
      out[field] = v as string | number[]
    } else {
      throw new CollateralError(`collateral field ${field} is missing or not a string`)
    }
  }
  return out as Collateral
}

/** A hex-or-byte-array collateral field as bytes. */
export function collateralBytes(field: string | number[]): Uint8Array {
  return typeof field === 'string' ? new Uint8Array(Buffer.from(field, 'hex')) : Uint8Array.from(field)
}

/**
 * When a collateral set can be used: from the latest issue date to the earliest next update of the TCB info, the QE
 * identity and both CRLs. A cache keeps a set until `notAfter`; past it Intel has published a newer one.
 */
export function collateralWindow(collateral: Collateral): { notBefore: Date; notAfter: Date } {
  const dates = (json: string, what: string) => {
    const body = JSON.parse(json) as { issueDate?: string; nextUpdate?: string }
    const from = Date.parse(body.issueDate ?? '')
    const to = Date.parse(body.nextUpdate ?? '')
    if (Number.isNaN(from) || Number.isNaN(to)) throw new CollateralError(`${what} has no issueDate/nextUpdate`)
    return { from, to }
  }
  const crl = (field: string | number[]) => {
    const parsed = parseCrl(collateralBytes(field))
    return { from: parsed.thisUpdate.getTime(), to: parsed.nextUpdate?.getTime() ?? Number.POSITIVE_INFINITY }
  }
  const all = [
    dates(collateral.tcb_info, 'tcb_info'),
    dates(collateral.qe_identity, 'qe_identity'),
    crl(collateral.pck_crl),
    crl(collateral.root_ca_crl),
  ]
  return {
    notBefore: new Date(Math.max(...all.map((d) => d.from))),
    notAfter: new Date(Math.min(...all.map((d) => d.to))),
  }
}
