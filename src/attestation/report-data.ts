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
