import { normalizeHex } from './hex.ts'

/** One GPU's evidence as served: the SPDM GET_MEASUREMENTS transcript and its device certificate chain. */
export type GpuEvidence = {
  /** PEM chain, leaf first. */
  certificateChainPem: string
  evidence: Uint8Array
  arch: string
}

/** The `nvidia_payload` of vllm-proxy / 0G reports; also the body NRAS `/v3/attest/gpu` takes. */
export type NvidiaPayload = { nonce: string; arch: string; evidenceList: GpuEvidence[] }

export const MAX_GPUS = 16
export const MAX_EVIDENCE_BYTES = 64 * 1024
const MAX_CHAIN_BYTES = 64 * 1024
const MAX_PAYLOAD_CHARS = 4 * MAX_GPUS * (MAX_EVIDENCE_BYTES + MAX_CHAIN_BYTES)

export class NvidiaPayloadError extends Error {
  override name = 'NvidiaPayloadError'
}

/**
 * Parses `nvidia_payload`: a JSON string (vllm-proxy) or object (0G Oct 2025) `{nonce, evidence_list:
 * [{certificate: base64(PEM chain), evidence: base64(SPDM), arch}], arch}` (tee-verification.md §2.1).
 */
export function parseNvidiaPayload(input: unknown): NvidiaPayload {
  let raw = input
  if (typeof input === 'string') {
    if (input.length > MAX_PAYLOAD_CHARS) throw new NvidiaPayloadError('nvidia_payload too large')
    try {
      raw = JSON.parse(input)
    } catch {
      throw new NvidiaPayloadError('nvidia_payload is not JSON')
    }
  }
  if (typeof raw !== 'object' || raw === null) throw new NvidiaPayloadError('nvidia_payload is not an object')
  const { nonce, evidence_list, arch } = raw as Record<string, unknown>
  if (typeof nonce !== 'string' || !/^(0x)?[0-9a-fA-F]{64}$/.test(nonce)) {
    throw new NvidiaPayloadError('nvidia_payload.nonce must be 32 bytes of hex')
  }
  if (typeof arch !== 'string') throw new NvidiaPayloadError('nvidia_payload.arch must be a string')
  if (!Array.isArray(evidence_list) || evidence_list.length === 0 || evidence_list.length > MAX_GPUS) {
    throw new NvidiaPayloadError(`nvidia_payload.evidence_list must hold 1..${MAX_GPUS} items`)
  }
  return { nonce: normalizeHex(nonce), arch, evidenceList: evidence_list.map(parseEvidence) }
}

function parseEvidence(item: unknown, i: number): GpuEvidence {
  const { certificate, evidence, arch } = (item ?? {}) as Record<string, unknown>
  if (typeof certificate !== 'string' || typeof evidence !== 'string' || typeof arch !== 'string') {
    throw new NvidiaPayloadError(`evidence ${i} needs certificate, evidence and arch strings`)
  }
  const chain = base64(certificate, MAX_CHAIN_BYTES, `evidence ${i} certificate`)
  return {
    certificateChainPem: Buffer.from(chain).toString('utf8'),
    evidence: base64(evidence, MAX_EVIDENCE_BYTES, `evidence ${i} evidence`),
    arch,
  }
}

function base64(value: string, cap: number, what: string): Uint8Array {
  if (value.length > Math.ceil(cap / 3) * 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new NvidiaPayloadError(`${what} is not base64 of at most ${cap} bytes`)
  }
  return new Uint8Array(Buffer.from(value, 'base64'))
}
