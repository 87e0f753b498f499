import { type Address, getAddress, type Hex } from 'viem'
import type { Receipt } from '../attestation/response-verifier.ts'
import { RECEIPT_FORMAT, type ReceiptPayload, type SignedReceipt, signReceipt } from '../attestation/signed-receipt.ts'
import type { CallRecord } from '../billing/usage-ledger.ts'
import type { CatalogEntry } from '../providers/catalog.ts'

/** The gateway's key, as receipts are signed with it (the wallet's LocalAccount is one). */
export type ReceiptSigner = { address: Address; signMessage(args: { message: string }): Promise<Hex> }

/** What the gateway knows of a signer's attestation when it signs a receipt (SignerAttestations.known). */
export type AttestedSigners = {
  known(provider: Address, signer: Address): { level: 'L2' | 'L3' | null; recordHash: Hex } | undefined
}

/** A recorded call as its receipt (GET /v1/receipts/{id} for its key, GET /admin/receipts/{id} for the admin). */
export function receiptJson(call: CallRecord) {
  return {
    id: call.requestId,
    object: 'receipt',
    created: Math.floor(call.createdAt / 1000),
    provider: getAddress(call.provider),
    model: call.model,
    endpoint: call.endpoint,
    status: call.status,
    usage: { input: call.inputUnits.toString(), output: call.outputUnits.toString() },
    fee: call.fee.toString(),
    delivered_bytes: call.deliveredBytes,
    response_key: call.resKey,
    verification: { status: call.verification, level: call.verificationLevel, detail: call.verificationDetail },
    // What anyone can check offline (zg-gateway attest verify-receipt), once the check is done.
    signed: call.signedReceipt ? (JSON.parse(call.signedReceipt) as SignedReceipt) : null,
  }
}

/**
 * Signs the receipt of a checked delivery: the hashes and the provider's signature as checked, the level reached
 * (L1 for a verified signature, raised to the signer's attested level), the fee and the usage.
 */
export async function signedReceipt(
  signer: ReceiptSigner,
  call: CallRecord,
  entry: CatalogEntry,
  receipt: Receipt,
  context: { attestations?: AttestedSigners; catalog: { syncedBlock: bigint | undefined } },
): Promise<{ text: string; level: ReceiptPayload['level'] }> {
  const attested = context.attestations?.known(entry.provider, entry.teeSignerAddress)
  const level = receipt.level === 'L1' && attested?.level ? attested.level : receipt.level
  const block = context.catalog.syncedBlock
  const payload: ReceiptPayload = {
    format: RECEIPT_FORMAT,
    gateway: signer.address,
    request_id: call.requestId,
    chat_key: call.resKey,
    provider: getAddress(entry.provider),
    model: call.model,
    endpoint: call.endpoint,
    created: Math.floor(call.createdAt / 1000),
    request_sha256: receipt.requestHash ?? null,
    response_sha256: receipt.responseHash ?? null,
    provider_signature: receipt.signature ?? null,
    signer: getAddress(entry.teeSignerAddress),
    status: receipt.status,
    level,
    attestation: attested?.recordHash ?? null,
    block_number: block === undefined ? null : block.toString(),
    fee: call.fee.toString(),
    usage: { input: call.inputUnits.toString(), output: call.outputUnits.toString() },
  }
  return { text: JSON.stringify(await signReceipt(signer, payload)), level }
}
