import {
  type Address,
  encodePacked,
  type Hex,
  hashMessage,
  keccak256,
  type LocalAccount,
  recoverPublicKey,
  stringToBytes,
} from 'viem'
import { publicKeyToAddress } from 'viem/accounts'

/**
 * The user's signatures in 0G's fine-tuning protocol (SDK `common/utils/encrypt.js` and
 * `fine-tuning/provider/provider.js`). Each is personal_sign (EIP-191) over the 32 bytes of a keccak256 digest —
 * the bytes, not their hex text. A provider recovers the address (who asks) and the public key (what the AES key
 * is ECIES-encrypted to) from the task-creation signature.
 */

/** Task creation: solidityPackedKeccak256(['address','uint256','string'], [user, nonce, datasetHash]). */
export function taskDigest(user: Address, nonce: bigint, datasetHash: string): Hex {
  return keccak256(encodePacked(['address', 'uint256', 'string'], [user, nonce, datasetHash]))
}

/** Task cancel: keccak256 of the uuid's 16 bytes (its hex without dashes). */
export function cancelDigest(taskId: string): Hex {
  return keccak256(uuidBytes(taskId))
}

/**
 * Dataset upload: keccak256(utf8(user + timestamp)), timestamp in unix seconds. `user` is the address text exactly
 * as the client wrote it (the SDK writes the checksummed form, the same text as in the request path), since a
 * different case is a different message.
 */
export function datasetUploadDigest(user: string, timestamp: number | bigint): Hex {
  return keccak256(stringToBytes(`${user}${timestamp}`))
}

/** LoRA download: keccak256(utf8(uuid hex without dashes + timestamp)), timestamp in unix seconds. */
export function loraDownloadDigest(taskId: string, timestamp: number | bigint): Hex {
  return keccak256(stringToBytes(`${taskId.replace(/-/g, '')}${timestamp}`))
}

/** personal_sign over the digest's bytes, as the SDK's ethers signer does with `signMessage(toBeArray(hash))`. */
export function signUserDigest(account: LocalAccount, digest: Hex): Promise<Hex> {
  return account.signMessage({ message: { raw: digest } })
}

/** Who signed `digest` (personal_sign over its bytes): the address and the uncompressed public key (0x04…). */
export async function recoverUser(digest: Hex, signature: Hex): Promise<{ address: Address; publicKey: Hex }> {
  const publicKey = await recoverPublicKey({ hash: hashMessage({ raw: digest }), signature })
  return { address: publicKeyToAddress(publicKey), publicKey }
}

/** A task id is a uuid; its bytes are what 0G signs for a cancel. */
export class InvalidTaskIdError extends Error {
  override name = 'InvalidTaskIdError'
  constructor(taskId: string) {
    super(`task id ${JSON.stringify(taskId.slice(0, 80))} is not a uuid`)
  }
}

function uuidBytes(taskId: string): Hex {
  const hex = taskId.replace(/-/g, '')
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new InvalidTaskIdError(taskId)
  return `0x${hex.toLowerCase()}`
}
