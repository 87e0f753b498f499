import { verify, X509Certificate } from 'node:crypto'
import { normalizeHex } from './hex.ts'
import { NVIDIA_DEVICE_IDENTITY_ROOT_PEM } from './nvidia-device-root.ts'
import { MAX_EVIDENCE_BYTES, type NvidiaPayload } from './nvidia-payload.ts'

export const MAX_CHAIN_CERTS = 8

/** SPDM GET_MEASUREMENTS request: version, code 0xE0, param1 (bit 0: signature requested), param2, nonce(32), slot. */
const REQUEST_LENGTH = 37
const NONCE_OFFSET = 4
/** ECDSA P-384 r ‖ s closing the MEASUREMENTS response. */
const SIGNATURE_LENGTH = 96

export type SpdmCheck = {
  ok: boolean
  chain: boolean
  signature: boolean
  nonce: boolean
  /** Requester nonce read from the evidence (hex). */
  evidenceNonce?: string
  reasons: string[]
}

/**
 * Checks one GPU's SPDM evidence locally (tee-verification.md §4.2): the PEM chain (leaf first) chains to the NVIDIA
 * Device Identity CA and is valid at `now`, the leaf's P-384/SHA-384 signature covers the transcript, and the
 * requester nonce (bytes 4..36) is ours. No RIM or OCSP checks: NRAS does those.
 */
export function verifySpdmEvidence(params: {
  evidence: Uint8Array
  certificateChainPem: string
  expectedNonce: string
  now: Date
  rootPem?: string
}): SpdmCheck {
  const reasons: string[] = []
  const { evidence } = params
  const out: SpdmCheck = { ok: false, chain: false, signature: false, nonce: false, reasons }
  if (evidence.length > MAX_EVIDENCE_BYTES || evidence.length < REQUEST_LENGTH + 4 + SIGNATURE_LENGTH) {
    reasons.push(`evidence length ${evidence.length} out of range`)
    return out
  }
  if (evidence[1] !== 0xe0 || (evidence[2]! & 1) !== 1 || evidence[REQUEST_LENGTH + 1] !== 0x60) {
    reasons.push('evidence is not a signed SPDM GET_MEASUREMENTS/MEASUREMENTS exchange')
    return out
  }
  let leaf: X509Certificate | undefined
  try {
    leaf = verifyChain(params.certificateChainPem, params.rootPem ?? NVIDIA_DEVICE_IDENTITY_ROOT_PEM, params.now)
    out.chain = true
  } catch (err) {
    reasons.push(`certificate chain: ${(err as Error).message}`)
  }
  if (leaf) {
    const signed = evidence.subarray(0, evidence.length - SIGNATURE_LENGTH)
    const signature = evidence.subarray(evidence.length - SIGNATURE_LENGTH)
    out.signature = verify('sha384', signed, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, signature)
    if (!out.signature) reasons.push('SPDM signature does not verify with the leaf certificate')
  }
  out.evidenceNonce = Buffer.from(evidence.subarray(NONCE_OFFSET, NONCE_OFFSET + 32)).toString('hex')
  out.nonce = out.evidenceNonce === normalizeHex(params.expectedNonce)
  if (!out.nonce) reasons.push(`evidence nonce ${out.evidenceNonce} is not ours`)
  out.ok = out.chain && out.signature && out.nonce
  return out
}

/** Walks leaf → … → root; each issuer must be a CA that signed its child, all valid at `now`. Returns the leaf. */
function verifyChain(chainPem: string, rootPem: string, now: Date): X509Certificate {
  const pems = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (pems.length === 0) throw new Error('no certificate')
  if (pems.length > MAX_CHAIN_CERTS) throw new Error(`more than ${MAX_CHAIN_CERTS} certificates`)
  const root = new X509Certificate(rootPem)
  const certs = pems.map((pem) => new X509Certificate(pem))
  // The served chain may end with the root itself (nvtrust samples do) or with the cert the root issued.
  if (certs.at(-1)!.fingerprint256 !== root.fingerprint256) certs.push(root)
  for (const [i, cert] of certs.entries()) {
    if (now < cert.validFromDate || now > cert.validToDate) {
      throw new Error(`cert ${i} not valid at ${now.toISOString()}`)
    }
    const issuer = certs[i + 1]
    if (issuer && (!issuer.ca || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey))) {
      throw new Error(`cert ${i} (${cert.subject.replaceAll('\n', ', ')}) is not signed by the next one`)
    }
  }
  return certs[0]!
}

export type GpuLocalCheck = {
  ok: boolean
  /** payload.nonce equals ours. */
  payloadNonce: boolean
  gpus: SpdmCheck[]
  reasons: string[]
}

/** Checks every GPU of an `nvidia_payload`; all must pass and the payload's own nonce must be ours too. */
export function verifyNvidiaPayloadLocally(payload: NvidiaPayload, expectedNonce: string, now: Date): GpuLocalCheck {
  const gpus = payload.evidenceList.map((e) =>
    verifySpdmEvidence({ evidence: e.evidence, certificateChainPem: e.certificateChainPem, expectedNonce, now }),
  )
  const payloadNonce = payload.nonce === normalizeHex(expectedNonce)
  const reasons = payloadNonce ? [] : [`nvidia_payload nonce ${payload.nonce} is not ours`]
  gpus.forEach((g, i) => {
    for (const r of g.reasons) reasons.push(`GPU ${i}: ${r}`)
  })
  return { ok: reasons.length === 0, payloadNonce, gpus, reasons }
}
