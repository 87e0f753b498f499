import { createHash } from 'node:crypto'
import { type Address, bytesToHex, getAddress, type Hex, hexToBytes, isHex } from 'viem'

/**
 * How a TDX quote's 64-byte report_data binds the response-signing key (tee-verification.md §1.2, §2.2, §6.1):
 * - `legacy-ascii-address`: 0G brokers since Nov 2025: ASCII "0x<EIP-55 address>" (42 bytes), NUL-padded to 64
 *   (0g-serving-broker `api/common/tee/tee.go` `legacyReportData`). No nonce, so no freshness.
 * - `signer-nonce`: Phala/NEAR vllm-proxy v1: the 20-byte address zero-padded to 32 bytes ‖ the verifier's
 *   32-byte nonce.
 * Layouts are detected by their exact shape, never guessed; anything else is rejected.
 */
export type ReportDataLayout = 'legacy-ascii-address' | 'signer-nonce'

export const REPORT_DATA_LENGTH = 64

export class ReportDataError extends Error {
  override name = 'ReportDataError'
  readonly reportData: Hex | undefined

  constructor(message: string, reportData?: Uint8Array) {
    super(message)
    this.reportData = reportData ? bytesToHex(reportData) : undefined
  }
}

/** The 64 report_data bytes binding `signer` (and `nonce`, 32 bytes, required for and only for signer-nonce). */
export function encodeReportData(layout: ReportDataLayout, signer: Address, nonce?: Hex): Uint8Array {
  const out = new Uint8Array(REPORT_DATA_LENGTH)
  if (layout === 'legacy-ascii-address') {
    if (nonce !== undefined) throw new ReportDataError('the legacy-ascii-address layout has no room for a nonce')
    out.set(new TextEncoder().encode(getAddress(signer)))
    return out
  }
  if (nonce === undefined || !isHex(nonce, { strict: true }) || nonce.length !== 66) {
    throw new ReportDataError(`the signer-nonce layout needs a 32-byte hex nonce, got ${String(nonce)}`)
  }
  out.set(hexToBytes(getAddress(signer)))
  out.set(hexToBytes(nonce), 32)
  return out
}

const ASCII_ADDRESS = /^0x[0-9a-fA-F]{40}$/

/** Reads back the signer (and nonce) from 64 report_data bytes; throws ReportDataError on any other shape. */
export function decodeReportData(bytes: Uint8Array): { layout: ReportDataLayout; signer: Address; nonce?: Hex } {
  if (bytes.length !== REPORT_DATA_LENGTH) {
    throw new ReportDataError(`report_data must be ${REPORT_DATA_LENGTH} bytes, got ${bytes.length}`, bytes)
  }
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 42))
  if (ASCII_ADDRESS.test(head) && isZero(bytes.subarray(42))) {
    return { layout: 'legacy-ascii-address', signer: getAddress(head.toLowerCase()) }
  }
  if (isZero(bytes.subarray(20, 32)) && !isZero(bytes.subarray(0, 20))) {
    return {
      layout: 'signer-nonce',
      signer: getAddress(bytesToHex(bytes.subarray(0, 20))),
      nonce: bytesToHex(bytes.subarray(32)),
    }
  }
  throw new ReportDataError('report_data matches no known layout (legacy-ascii-address, signer-nonce)', bytes)
}

/**
 * The bytes of a report_data field as served: base64 (0G `/v1/quote`, Go []byte JSON) or hex with or without 0x
 * (dstack guest agent, vllm-proxy). 64 bytes are 88 base64 characters or 128 hex digits, so the two never collide.
 */
export function reportDataFieldBytes(field: string): Uint8Array {
  const hex = field.startsWith('0x') ? field.slice(2) : field
  if (hex.length === REPORT_DATA_LENGTH * 2 && /^[0-9a-fA-F]*$/.test(hex)) return hexToBytes(`0x${hex}`)
  if (field.length === 88 && /^[A-Za-z0-9+/]{86}==$/.test(field)) return new Uint8Array(Buffer.from(field, 'base64'))
  throw new ReportDataError(`report_data field is neither 64 bytes of hex nor of base64: ${field.slice(0, 20)}…`)
}

function isZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0)
}

/**
 * Every layout verifyReportDataBinding recognises; beyond the two above:
 * - `signer-tls-nonce`: Phala/NEAR vllm-proxy v2 (tee-verification.md §2.2): sha256(signer bytes ‖ TLS certificate
 *   fingerprint, 32 bytes) ‖ nonce. The signer is a 20-byte address (ECDSA) or a 32-byte Ed25519 public key.
 * - `enc-pub-signer`: 0G brokers with E2EE (0g-serving-broker `api/common/tee/enckey.go` @ 4c59c0c4, their SPEC §4.2):
 *   X25519 enc_pub(32) ‖ signer address(20) ‖ version uint32 big-endian = 1 ‖ 8 zero bytes. No nonce.
 */
export type BoundReportDataLayout = ReportDataLayout | 'signer-tls-nonce' | 'enc-pub-signer'

export type ReportDataExpectation = {
  /** A 20-byte address, or a 32-byte Ed25519 public key (vllm-proxy `signing_algo: ed25519`). */
  signer: Hex
  /** The 32-byte nonce we asked the provider to bind. */
  nonce?: Hex
  /** The 32-byte TLS fingerprint the report names (and the live connection showed), for `signer-tls-nonce`. */
  tlsKeyFingerprint?: Hex
  /** The enc_pub the provider serves, for `enc-pub-signer`; when given it must be the one bound. */
  encPub?: Hex
}

/**
 * Checks that 64 report_data bytes bind the expected signer in one accepted layout, found by exact comparison with
 * what each layout would hold for that signer (hashed layouts cannot be recognised any other way), never guessed.
 * `fresh` says whether they also bind `nonce`. Throws ReportDataError when nothing matches, for all-zero bytes (the
 * GCP backend binds nothing) and for 0G's Oct-2025 sha512("app-data:" + JSON) layout, which carries no nonce and can
 * only be checked by re-serialising the provider's JSON byte for byte.
 */
export function verifyReportDataBinding(
  bytes: Uint8Array,
  expected: ReportDataExpectation,
): { layout: BoundReportDataLayout; fresh: boolean; encPub?: Hex } {
  if (bytes.length !== REPORT_DATA_LENGTH) {
    throw new ReportDataError(`report_data must be ${REPORT_DATA_LENGTH} bytes, got ${bytes.length}`, bytes)
  }
  if (isZero(bytes)) throw new ReportDataError('report_data is all zero: it binds no key', bytes)
  const signer = hexToBytes(expected.signer)
  if (signer.length !== 20 && signer.length !== 32) {
    throw new ReportDataError(`the signer must be a 20-byte address or a 32-byte key, got ${signer.length} bytes`)
  }
  const nonce = expected.nonce === undefined ? undefined : hexToBytes(expected.nonce)
  const tail = bytes.subarray(32)
  const fresh = nonce !== undefined && nonce.length === 32 && equal(tail, nonce)
  const head = new Uint8Array(32)
  head.set(signer)
  if (signer.length === 20) {
    const address = getAddress(bytesToHex(signer))
    // No room for a nonce: a replayable startup quote, never fresh.
    if (equal(bytes, encodeReportData('legacy-ascii-address', address))) {
      return { layout: 'legacy-ascii-address', fresh: false }
    }
    const tagged = bytes.subarray(52, 56)
    if (equal(bytes.subarray(32, 52), signer) && new DataView(tagged.buffer, tagged.byteOffset).getUint32(0) === 1) {
      if (!isZero(bytes.subarray(56)))
        throw new ReportDataError('enc-pub-signer report_data has non-zero reserved bytes', bytes)
      const encPub = bytesToHex(bytes.subarray(0, 32))
      if (expected.encPub !== undefined && expected.encPub.toLowerCase() !== encPub) {
        throw new ReportDataError(`report_data binds enc_pub ${encPub}, not ${expected.encPub}`, bytes)
      }
      return { layout: 'enc-pub-signer', fresh: false, encPub }
    }
    const legacyJson = new TextEncoder().encode(`app-data:{"report_data":"${address}"}`)
    if (equal(bytes, createHash('sha512').update(legacyJson).digest())) {
      throw new ReportDataError('report_data is the Oct-2025 sha512("app-data:…") layout, which is not accepted', bytes)
    }
  }
  if (equal(bytes.subarray(0, 32), head)) return { layout: 'signer-nonce', fresh }
  if (expected.tlsKeyFingerprint !== undefined) {
    const fingerprint = hexToBytes(expected.tlsKeyFingerprint)
    const digest = createHash('sha256').update(signer).update(fingerprint).digest()
    if (fingerprint.length === 32 && equal(bytes.subarray(0, 32), digest)) return { layout: 'signer-tls-nonce', fresh }
  }
  throw new ReportDataError(`report_data does not bind ${expected.signer} in any accepted layout`, bytes)
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
