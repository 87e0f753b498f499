import { type Address, getAddress, type Hex } from 'viem'
import {
  cancelDigest,
  datasetUploadDigest,
  loraDownloadDigest,
  recoverUser,
  taskDigest,
} from '../../fine-tuning/signatures.ts'
import { FineTuningError } from './ft-error.ts'

/** 0G broker rule: a timestamped signature (dataset upload, LoRA download) is valid for 5 minutes either way. */
export const TIMESTAMP_WINDOW_SECONDS = 300

/** Throws unless `timestamp` (unix seconds, decimal) is within the window of now. */
export function checkTimestamp(timestamp: string, now = Date.now()): number {
  if (!/^\d{1,12}$/.test(timestamp))
    throw new FineTuningError(400, 'invalid_timestamp', 'timestamp is unix seconds, a whole number')
  const seconds = Number(timestamp)
  if (Math.abs(now / 1000 - seconds) > TIMESTAMP_WINDOW_SECONDS)
    throw new FineTuningError(
      401,
      'stale_signature',
      `the signature's timestamp ${seconds} is more than ${TIMESTAMP_WINDOW_SECONDS} s from the provider's clock: sign again`,
    )
  return seconds
}

async function recover(digest: Hex, signature: Hex) {
  try {
    return await recoverUser(digest, signature)
  } catch {
    return undefined
  }
}

function refuse(what: string, expected: Address): FineTuningError {
  return new FineTuningError(401, 'invalid_signature', `the ${what} signature is not ${expected}'s`)
}

/**
 * The upload signs `${address}${timestamp}` as text, so its case matters: the path's spelling (the SDK's, which signs
 * the same text it puts in the path) first, then the checksummed and lower-case ones.
 */
export async function verifyDatasetSignature(
  pathAddress: string,
  user: Address,
  timestamp: string,
  signature: Hex,
): Promise<void> {
  for (const spelling of new Set([pathAddress, user, user.toLowerCase()])) {
    const signer = await recover(datasetUploadDigest(spelling, BigInt(timestamp)), signature)
    if (signer && getAddress(signer.address) === user) return
  }
  throw refuse('dataset upload', user)
}

/** The task creation signature; its public key is what the model's key is encrypted to. */
export async function verifyTaskSignature(
  user: Address,
  nonce: bigint,
  datasetHash: string,
  signature: Hex,
): Promise<{ publicKey: Hex }> {
  const signer = await recover(taskDigest(user, nonce, datasetHash), signature)
  if (!signer || getAddress(signer.address) !== user) throw refuse('task', user)
  return { publicKey: signer.publicKey }
}

export async function verifyCancelSignature(taskId: string, signature: Hex, user: Address): Promise<void> {
  const signer = await recover(cancelDigest(taskId), signature)
  if (!signer || getAddress(signer.address) !== user) throw refuse('cancel', user)
}

export async function verifyLoraSignature(
  taskId: string,
  timestamp: string,
  signature: Hex,
  user: Address,
): Promise<void> {
  const signer = await recover(loraDownloadDigest(taskId, BigInt(timestamp)), signature)
  if (!signer || getAddress(signer.address) !== user) throw refuse('LoRA download', user)
}
