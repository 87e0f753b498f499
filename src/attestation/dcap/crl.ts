import { verify, X509Certificate } from 'node:crypto'
import { constants as dcapConstants, utils as dcapUtils } from '@phala/dcap-qvl'
import { type Collateral, collateralBytes } from './collateral.ts'
import { DER_BIT_STRING, DER_INTEGER, DER_SEQUENCE, DerError, derChildren, readDer, readDerTime } from './der.ts'

/** The fields of an X.509 CRL (RFC 5280 §5.1) that dcap-qvl 0.3.9 never checks: validity dates and signature. */
export type ParsedCrl = {
  thisUpdate: Date
  nextUpdate: Date | undefined
  /** The DER TBSCertList, i.e. the signed bytes. */
  tbs: Uint8Array
  /** The DER ECDSA signature (Intel signs its CRLs with ecdsa-with-SHA256). */
  signature: Uint8Array
}

/** ecdsa-with-SHA256, 1.2.840.10045.4.3.2: the only algorithm Intel's SGX/TDX PKI uses. */
const ECDSA_SHA256_OID = Buffer.from('06082a8648ce3d040302', 'hex')

/** Parses a DER CRL far enough to check it; throws CrlError on anything malformed. */
export function parseCrl(der: Uint8Array): ParsedCrl {
  try {
    const top = readDer(der, 0)
    const [tbsEl, algEl, sigEl] = derChildren(der, top)
    if (top.tag !== DER_SEQUENCE || tbsEl?.tag !== DER_SEQUENCE || algEl?.tag !== DER_SEQUENCE) {
      throw new CrlError('not a DER CertificateList')
    }
    if (sigEl?.tag !== DER_BIT_STRING || der[sigEl.contentStart] !== 0) throw new CrlError('bad CRL signature field')
    if (!Buffer.from(der.subarray(algEl.contentStart, algEl.end)).subarray(0, 10).equals(ECDSA_SHA256_OID)) {
      throw new CrlError('CRL is not signed with ecdsa-with-SHA256')
    }
    const fields = derChildren(der, tbsEl)
    // version is OPTIONAL; then signature AlgorithmIdentifier, issuer Name, thisUpdate, nextUpdate OPTIONAL.
    const rest = fields[0]?.tag === DER_INTEGER ? fields.slice(1) : fields
    const [, , thisEl, nextEl] = rest
    if (!thisEl) throw new CrlError('CRL has no thisUpdate')
    const next = nextEl && (nextEl.tag === 0x17 || nextEl.tag === 0x18) ? readDerTime(der, nextEl) : undefined
    return {
      thisUpdate: readDerTime(der, thisEl),
      nextUpdate: next,
      tbs: der.subarray(tbsEl.start, tbsEl.end),
      signature: der.subarray(sigEl.contentStart + 1, sigEl.end),
    }
  } catch (err) {
    if (err instanceof DerError) throw new CrlError(`malformed CRL: ${err.message}`)
    throw err
  }
}

export class CrlError extends Error {
  override name = 'CrlError'
}

/**
 * Rejects a collateral set whose CRLs are outside their validity at `now`, or not signed by Intel: dcap-qvl 0.3.9
 * only searches CRLs for revoked serials and silently skips ones it cannot parse (tee-verification.md §4.1), so a
 * stale CRL would hide a revocation. The root CA CRL must verify under the pinned Intel SGX Root CA; the PCK CRL
 * under the first certificate of `pck_crl_issuer_chain`, which must itself be issued by that root and valid at `now`.
 */
export function checkCollateralCrls(collateral: Collateral, now: Date): void {
  const root = new X509Certificate(Buffer.from(dcapConstants.TRUSTED_ROOT_CA_DER))
  const [issuerDer] = dcapUtils.extractCerts(Buffer.from(collateral.pck_crl_issuer_chain))
  if (!issuerDer) throw new CrlError('pck_crl_issuer_chain holds no certificate')
  const pckIssuer = new X509Certificate(issuerDer)
  if (!pckIssuer.verify(root.publicKey)) throw new CrlError('the PCK CRL issuer is not signed by the Intel SGX Root CA')
  if (now < new Date(pckIssuer.validFrom) || now > new Date(pckIssuer.validTo)) {
    throw new CrlError(`the PCK CRL issuer certificate is not valid at ${now.toISOString()}`)
  }
  checkCrl('root_ca_crl', collateralBytes(collateral.root_ca_crl), root, now)
  checkCrl('pck_crl', collateralBytes(collateral.pck_crl), pckIssuer, now)
}

function checkCrl(name: string, der: Uint8Array, issuer: X509Certificate, now: Date): void {
  const crl = parseCrl(der)
  if (now < crl.thisUpdate) {
    throw new CrlError(
      `CRL not yet valid: ${name} thisUpdate ${crl.thisUpdate.toISOString()} is after ${now.toISOString()}`,
    )
  }
  if (!crl.nextUpdate || now > crl.nextUpdate) {
    throw new CrlError(
      `CRL expired: ${name} nextUpdate ${crl.nextUpdate?.toISOString() ?? '(none)'} is before ${now.toISOString()}`,
    )
  }
  if (!verify('sha256', crl.tbs, issuer.publicKey, crl.signature)) {
    throw new CrlError(`CRL signature is invalid: ${name} is not signed by ${issuer.subject.replace(/\n/g, ', ')}`)
  }
}
