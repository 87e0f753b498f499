import { type Address, type Hex, hexToBytes, type LocalAccount, type TypedDataDefinition } from 'viem'
import { personalMessageDigest, signDigest } from '../chain/secp256k1.ts'
import type { ReportDataLayout } from './report-data.ts'
import { type ChatSignature, responseSignatureText } from './response-signature.ts'

/**
 * What `GET /v1/quote` and `GET /v1/proxy/attestation/report?nonce=` serve for a dstack (Intel TDX) signer: the
 * dstack GetQuote JSON as 0G brokers serve it (0g-protocol.md §7: quote hex, event_log JSON string, report_data
 * base64, vm_config, tcb_info), plus the signer and the report_data layout so a verifier need not guess.
 */
export type DstackAttestationReport = {
  tee: 'intel-tdx'
  /** The TDX quote, hex without 0x (as dstack returns it). */
  quote: string
  /** The dstack event log, a JSON string. */
  event_log: string
  /** The 64 report_data bytes, base64 (as 0G's /v1/quote serves them; the SDK's verifyService decodes base64). */
  report_data: string
  vm_config?: string
  /** dstack Info `tcb_info` (JSON string with app_compose), used by the SDK's compose-hash check. */
  tcb_info?: unknown
  signing_address: Address
  signing_algo: 'ecdsa'
  report_data_layout: ReportDataLayout
  nonce?: Hex
}

export const INSECURE_DEV_SIGNER_MESSAGE =
  'insecure dev signer: this node does not run in a TEE; no hardware quote exists' as const

/** The dev signer's answer: says plainly that there is no TEE, and never carries a fabricated quote. */
export type InsecureAttestationReport = {
  tee: 'none'
  insecure: true
  signing_address: Address
  signing_algo: 'ecdsa'
  quote: null
  message: typeof INSECURE_DEV_SIGNER_MESSAGE
  nonce?: Hex
}

export type AttestationReport = DstackAttestationReport | InsecureAttestationReport

/**
 * The provider node's signing key: signs responses (EIP-191) and settlements (EIP-712), and attests itself.
 * On-chain this is the service's teeSignerAddress.
 */
export interface TeeSigner {
  readonly kind: 'dstack' | 'insecure-dev'
  readonly address: Address
  /** EIP-191 personal_sign of the UTF-8 text; 65 bytes, v = 27/28. */
  signMessage(text: string): Promise<Hex>
  signTypedData(typedData: TypedDataDefinition): Promise<Hex>
  /**
   * Raw ECDSA over a 32-byte digest, no EIP-191 prefix: 65 bytes r‖s‖v, v = 27/28. 0G's fine-tuning artifact is
   * signed this way (the SDK's aesGCMDecryptToFile checks `recoverAddress(keccak256(tags), sig)`).
   */
  signDigest(digest: Hex): Promise<Hex>
  /** `nonce`: 32 bytes from the verifier, bound into the quote when the signer can. */
  attestation(nonce?: Hex): Promise<AttestationReport>
}

/** Signs one response the way 0G brokers do (`ctrl/chatbot.go` `signChat`): the exact request and response bytes. */
export async function signChat(
  signer: TeeSigner,
  requestBody: Uint8Array | string,
  responseBody: Uint8Array | string,
): Promise<ChatSignature> {
  const text = responseSignatureText(requestBody, responseBody)
  return { text, signature: await signer.signMessage(text), signing_address: signer.address, signing_algo: 'ecdsa' }
}

/** A nonce a verifier sent that is not 32 bytes of 0x-hex. */
export class InvalidAttestationNonceError extends Error {
  override name = 'InvalidAttestationNonceError'
  readonly nonce: string

  constructor(nonce: string) {
    super(`attestation nonce must be 32 bytes of 0x-hex (66 characters), got ${JSON.stringify(nonce.slice(0, 80))}`)
    this.nonce = nonce
  }
}

/** Throws InvalidAttestationNonceError unless `nonce` is undefined or 32 bytes of 0x-hex. */
export function checkAttestationNonce(nonce: string | undefined): asserts nonce is Hex | undefined {
  if (nonce !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(nonce)) throw new InvalidAttestationNonceError(nonce)
}

/** A TeeSigner over a local key; `attestation` is what differs between the kinds. */
export function accountTeeSigner(params: {
  kind: TeeSigner['kind']
  account: LocalAccount
  /** The account's key: when given, response signing takes the native secp256k1 path (it signs every response). */
  privateKey?: Hex
  attestation: (nonce?: Hex) => Promise<AttestationReport>
}): TeeSigner {
  const { account } = params
  const key = params.privateKey && hexToBytes(params.privateKey)
  return {
    kind: params.kind,
    address: account.address,
    signMessage: key
      ? (text) => signDigest(personalMessageDigest(text), key)
      : (text) => account.signMessage({ message: text }),
    signTypedData: (typedData) => account.signTypedData(typedData),
    signDigest: key ? (digest) => signDigest(digest, key) : (digest) => signRawDigest(account, digest),
    attestation: params.attestation,
  }
}

async function signRawDigest(account: LocalAccount, digest: Hex): Promise<Hex> {
  if (!account.sign) throw new Error(`account ${account.address} cannot sign a raw digest`)
  return account.sign({ hash: digest })
}
