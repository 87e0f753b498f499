import { type Address, getAddress, type Hex, isAddress, isAddressEqual, isHex } from 'viem'
import { personalMessageDigest, recoverDigestAddress } from '../chain/secp256k1.ts'

export const RECEIPT_FORMAT = 'zg-receipt-v1'

/**
 * What the gateway vouches for about one delivered response. Amounts are neuron as decimal strings; hashes are the
 * lowercase sha256 hex of the exact bytes the gateway sent and received.
 */
export type ReceiptPayload = {
  format: typeof RECEIPT_FORMAT
  /** The gateway that signed it (the wallet that paid). */
  gateway: Address
  request_id: string
  /** The provider's id for the response (ZG-Res-Key), under which it serves its signature. */
  chat_key: string | null
  provider: Address
  model: string
  endpoint: string
  /** Unix seconds of the delivery. */
  created: number
  request_sha256: string | null
  response_sha256: string | null
  /** The provider's EIP-191 signature over `request_sha256:response_sha256`, as checked. */
  provider_signature: Hex | null
  /** The TEE signer acknowledged on-chain that the signature had to recover to. */
  signer: Address
  status: 'verified' | 'unverified' | 'disputed' | 'unverifiable'
  /** The level this response reached: L1 (signature by the acknowledged signer), L2/L3 (signer attested), or null. */
  level: 'L1' | 'L2' | 'L3' | null
  /** sha256 of the signer's attestation record, when the signer was attested (L2 and up). */
  attestation: Hex | null
  /** The block as of which the on-chain signer acknowledgement was read. */
  block_number: string | null
  fee: string
  usage: { input: string; output: string }
}

/** A receipt as stored and served: the exact signed text, its EIP-191 signature, and who signed it. */
export type SignedReceipt = { format: typeof RECEIPT_FORMAT; payload: string; signature: Hex; gateway: Address }

/** Signs a receipt with the gateway's key: personal_sign over the payload's JSON text, as anyone can check with viem. */
export async function signReceipt(
  signer: { address: Address; signMessage(args: { message: string }): Promise<Hex> },
  payload: ReceiptPayload,
): Promise<SignedReceipt> {
  const text = JSON.stringify(payload)
  return {
    format: RECEIPT_FORMAT,
    payload: text,
    signature: await signer.signMessage({ message: text }),
    gateway: signer.address,
  }
}

export type ReceiptCheck =
  | { ok: true; payload: ReceiptPayload; providerSignature: 'valid' | 'absent' | 'disputed' }
  | { ok: false; reason: string; payload?: ReceiptPayload }

/**
 * Checks a signed receipt offline: the gateway's signature over the payload (and, with `gateway`, that it is the
 * gateway expected), and the provider's signature inside it over the two hashes, recovering to the signer named.
 */
export async function verifySignedReceipt(receipt: unknown, opts: { gateway?: Address } = {}): Promise<ReceiptCheck> {
  const r = receipt as Partial<SignedReceipt> | null
  if (
    !r ||
    typeof r !== 'object' ||
    r.format !== RECEIPT_FORMAT ||
    typeof r.payload !== 'string' ||
    typeof r.signature !== 'string' ||
    !isHex(r.signature) ||
    typeof r.gateway !== 'string' ||
    !isAddress(r.gateway, { strict: false })
  ) {
    return { ok: false, reason: `not a ${RECEIPT_FORMAT} signed receipt` }
  }
  let signedBy: Address
  try {
    signedBy = await recoverDigestAddress(personalMessageDigest(r.payload), r.signature)
  } catch (err) {
    return { ok: false, reason: `the gateway signature does not recover: ${(err as Error).message}` }
  }
  if (!isAddressEqual(signedBy, r.gateway))
    return { ok: false, reason: `signed by ${signedBy}, not by the gateway it names (${getAddress(r.gateway)})` }
  if (opts.gateway && !isAddressEqual(signedBy, opts.gateway))
    return { ok: false, reason: `signed by ${signedBy}, not by the expected gateway ${getAddress(opts.gateway)}` }
  let payload: ReceiptPayload
  try {
    payload = JSON.parse(r.payload) as ReceiptPayload
  } catch {
    return { ok: false, reason: 'the payload is not JSON' }
  }
  if (payload.format !== RECEIPT_FORMAT || !isAddressEqual(payload.gateway, signedBy))
    return { ok: false, reason: 'the payload names another format or gateway than its envelope', payload }
  if (!payload.provider_signature) return { ok: true, payload, providerSignature: 'absent' }
  const text = `${payload.request_sha256}:${payload.response_sha256}`
  let provider: Address
  try {
    provider = await recoverDigestAddress(personalMessageDigest(text), payload.provider_signature)
  } catch (err) {
    return { ok: false, reason: `the provider signature does not recover: ${(err as Error).message}`, payload }
  }
  // A disputed response's signature is kept as evidence: it is expected not to match.
  if (payload.status === 'disputed') return { ok: true, payload, providerSignature: 'disputed' }
  if (!isAddressEqual(provider, payload.signer))
    return { ok: false, reason: `the provider signature recovers to ${provider}, not to ${payload.signer}`, payload }
  return { ok: true, payload, providerSignature: 'valid' }
}
