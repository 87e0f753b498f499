import { hash } from 'node:crypto'
import { type Address, type Hex, isAddress, isAddressEqual } from 'viem'
import { personalMessageDigest, recoverDigestAddress } from '../chain/secp256k1.ts'

/**
 * The per-response signature a 0G provider serves at `GET /v1/proxy/signature/{chatKey}` (0g-protocol.md §4 "What is
 * signed"; broker `ctrl/proxy.go` `ChatSignature`). Centralized providers add routing-proof fields
 * (provider_type, provider_identity, tls_cert_fingerprint), which this check ignores.
 */
export type ChatSignature = {
  /** sha256hex(request body) + ":" + sha256hex(response body). */
  text: string
  /** EIP-191 personal_sign of `text`, 65 bytes, v = 27/28. */
  signature: Hex
  signing_address: Address
  signing_algo: 'ecdsa'
}

export type ResponseSignatureFailure =
  | 'bad_signature'
  | 'wrong_signer'
  | 'request_mismatch'
  | 'response_mismatch'
  | 'malformed'

/**
 * The text a provider signs for one response: lowercase hex sha256 of the exact request bytes it received, ":",
 * and of the exact response bytes it returned (the full SSE body for streams). Strings are hashed as UTF-8.
 */
export function responseSignatureText(requestBody: Uint8Array | string, responseBody: Uint8Array | string): string {
  return `${sha256Hex(requestBody)}:${sha256Hex(responseBody)}`
}

/** Lowercase hex sha256 of the exact bytes (strings as UTF-8): each half of a response signature's text. */
export function sha256Hex(body: Uint8Array | string): string {
  // One call, no Hash object: both halves of every signed response go through here.
  return hash('sha256', body, 'hex')
}

const PLAIN_TEXT = /^([0-9a-fA-F]{64}):([0-9a-fA-F]{64})$/

/**
 * Verifies a served response signature: the EIP-191 signer of `text` must be `expectedSigner` (the service's
 * on-chain teeSignerAddress, or TargetTeeAddress for separated providers). The served `signing_address` is not
 * trusted, as in the SDK. When the bodies are given, `text` must also equal their hashes: the SDK skips this, so a
 * provider could otherwise replay any text it once signed (tee-verification.md §0 finding 2).
 */
export async function verifyResponseSignature(params: {
  signature: ChatSignature
  expectedSigner: Address
  requestBody?: Uint8Array | string
  /** sha256 hex of the request, for a request that was streamed rather than held (instead of requestBody). */
  requestHash?: string
  responseBody?: Uint8Array | string
  /** sha256 hex of the response, instead of responseBody. */
  responseHash?: string
}): Promise<{ ok: true } | { ok: false; reason: ResponseSignatureFailure }> {
  const { signature: sig, expectedSigner } = params
  if (
    typeof sig !== 'object' ||
    sig === null ||
    typeof sig.text !== 'string' ||
    typeof sig.signature !== 'string' ||
    !/^0x[0-9a-fA-F]{130}$/.test(sig.signature) ||
    (sig.signing_algo !== undefined && sig.signing_algo !== 'ecdsa') ||
    !isAddress(expectedSigner, { strict: false })
  ) {
    return { ok: false, reason: 'malformed' }
  }
  let recovered: Address
  try {
    recovered = await recoverDigestAddress(personalMessageDigest(sig.text), sig.signature)
  } catch {
    return { ok: false, reason: 'bad_signature' }
  }
  if (!isAddressEqual(recovered, expectedSigner)) return { ok: false, reason: 'wrong_signer' }
  const requestHash =
    params.requestHash ?? (params.requestBody === undefined ? undefined : sha256Hex(params.requestBody))
  const responseHash =
    params.responseHash ?? (params.responseBody === undefined ? undefined : sha256Hex(params.responseBody))
  if (requestHash === undefined && responseHash === undefined) return { ok: true }
  const parts = PLAIN_TEXT.exec(sig.text)
  // E.g. an E2EE variant ("zg-sig-v1/e2ee-ct:…") whose hashes cover other bytes than the ones we hold.
  if (!parts) return { ok: false, reason: 'malformed' }
  if (requestHash !== undefined && parts[1]?.toLowerCase() !== requestHash.toLowerCase()) {
    return { ok: false, reason: 'request_mismatch' }
  }
  if (responseHash !== undefined && parts[2]?.toLowerCase() !== responseHash.toLowerCase()) {
    return { ok: false, reason: 'response_mismatch' }
  }
  return { ok: true }
}
