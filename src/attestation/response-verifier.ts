import type { Address, Hex } from 'viem'
import { VERIFIABLE } from './levels.ts'
import { type ChatSignature, sha256Hex, verifyResponseSignature } from './response-signature.ts'

export type Receipt = {
  status: 'verified' | 'unverified' | 'disputed' | 'unverifiable'
  /**
   * L1: the signature over sha256(request):sha256(response) of the exact bytes exchanged recovers to the TEE
   * signer acknowledged on-chain. (L0 would be a signature from a key nobody vouches for; L2 and up need a quote.)
   */
  level: 'L1' | null
  detail: string
  signer?: Address
  /** What was checked: the sha256 hex of the exact request and response bytes. */
  requestHash?: string
  responseHash?: string
  /** The provider's signature over `requestHash:responseHash`, when it verified or was disputed. */
  signature?: Hex
}

export type VerifyDeliveryParams = {
  /** The provider's base URL (from chain). */
  url: string
  model: string
  verifiability: string
  /** The on-chain, owner-acknowledged TEE signer. */
  teeSignerAddress: Address
  teeSignerAcknowledged: boolean
  resKey: string | null
  /**
   * The signature the provider sent with the response (`ZG-Res-Signature`, zg-gateway provider nodes): checked over
   * the exact bytes first, so a good one needs no round trip. Without one, or when it does not verify, the one the
   * provider serves at /v1/proxy/signature/{key} decides, as with any 0G provider.
   */
  signature?: Hex | null
  /** The request as sent, or its sha256 hex (when it was streamed, or hashed already). */
  requestBody: Uint8Array | { sha256: string }
  /** The response as received, or its sha256 hex. */
  responseBody: Uint8Array | { sha256: string }
  /** How the signature is fetched: through the guarded provider client (no redirects, size-capped). */
  fetchJson: (url: string, timeoutMs: number) => Promise<{ status: number; json: unknown }>
  timeoutMs?: number
}

const VERIFIED = (
  signer: Address,
  source: 'sent with the response' | 'fetched from the provider',
  checked: { requestHash: string; responseHash: string; signature: Hex },
): Receipt => ({
  status: 'verified',
  level: 'L1',
  detail: `signature by the acknowledged TEE signer over the exact request and response bytes (${source})`,
  signer,
  ...checked,
})

/**
 * Verifies one delivered response, off the hot path: checks the provider's signature for it (the one sent with the
 * response, else the one fetched from the provider) against the exact bytes the gateway sent and received (content
 * binding, which the SDK does not do) and against the signer acknowledged on-chain.
 */
export async function verifyDelivery(params: VerifyDeliveryParams): Promise<Receipt> {
  if (!VERIFIABLE.has(params.verifiability)) {
    return {
      status: 'unverifiable',
      level: null,
      detail: `verifiability "${params.verifiability}" is not signed by a TEE`,
    }
  }
  if (!params.teeSignerAcknowledged) {
    return { status: 'unverifiable', level: null, detail: 'the TEE signer is not acknowledged on-chain' }
  }
  const sha256 = (body: Uint8Array | { sha256: string }) => (body instanceof Uint8Array ? sha256Hex(body) : body.sha256)
  const hashes = { requestHash: sha256(params.requestBody), responseHash: sha256(params.responseBody) }
  if (params.signature) {
    const text = `${hashes.requestHash}:${hashes.responseHash}`
    const sent = await verifyResponseSignature({
      signature: { text, signature: params.signature, signing_address: params.teeSignerAddress, signing_algo: 'ecdsa' },
      expectedSigner: params.teeSignerAddress,
    })
    if (sent.ok)
      return VERIFIED(params.teeSignerAddress, 'sent with the response', { ...hashes, signature: params.signature })
  }
  if (!params.resKey)
    return { status: 'unverified', level: null, detail: 'the provider returned no ZG-Res-Key', ...hashes }
  let signature: ChatSignature
  try {
    const res = await params.fetchJson(
      `${params.url}/v1/proxy/signature/${encodeURIComponent(params.resKey)}?model=${encodeURIComponent(params.model)}`,
      params.timeoutMs ?? 10_000,
    )
    if (res.status !== 200)
      return { status: 'unverified', level: null, detail: `signature fetch answered ${res.status}`, ...hashes }
    signature = res.json as ChatSignature
  } catch (err) {
    return { status: 'unverified', level: null, detail: `signature fetch failed: ${(err as Error).message}`, ...hashes }
  }
  const result = await verifyResponseSignature({ signature, expectedSigner: params.teeSignerAddress, ...hashes })
  if (result.ok)
    return VERIFIED(params.teeSignerAddress, 'fetched from the provider', { ...hashes, signature: signature.signature })
  // The provider's own signature, kept as the evidence of the dispute.
  const evidence = typeof signature?.signature === 'string' && /^0x[0-9a-fA-F]{130}$/.test(signature.signature)
  return {
    status: 'disputed',
    level: null,
    detail: `signature check failed: ${result.reason}`,
    ...hashes,
    ...(evidence && { signature: signature.signature }),
  }
}
