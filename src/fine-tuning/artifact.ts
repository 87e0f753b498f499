import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { type Address, bytesToHex, type Hex, isAddressEqual, keccak256 } from 'viem'
import { recoverDigestAddress } from '../chain/secp256k1.ts'

/**
 * 0G's encrypted fine-tuning artifact (the SDK's `common/utils/encrypt.js`, aesGCMDecryptToFile):
 *
 *     signature (65) ‖ iv (12) ‖ chunk ‖ chunk ‖ …      chunk = AES-256-GCM ciphertext of ≤ 64 MiB ‖ tag (16)
 *
 * Each chunk is encrypted under the same key with the IV incremented big-endian once per chunk. The signature is raw
 * ECDSA (r‖s‖v, v = 27/28, no EIP-191 prefix) by the TEE signer over keccak256 of all the tags concatenated. The
 * SDK reads chunks of exactly 64 MiB + 16 bytes, so every chunk but the last must hold a full 64 MiB.
 */
export const ARTIFACT_CHUNK_BYTES = 64 * 1024 * 1024

const SIGNATURE_BYTES = 65
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32

/** The artifact is malformed, its signature is not the TEE signer's, or a chunk fails authentication. */
export class ArtifactDecryptionError extends Error {
  override name = 'ArtifactDecryptionError'
}

/** `chunkSize` exists for tests; the SDK only reads the 64 MiB default. */
export type ArtifactOptions = { chunkSize?: number }

/**
 * Encrypts `plain` under a fresh random key and IV, signing the tags with `signDigest` (a TeeSigner's). Returns the
 * file's bytes and the raw 32-byte key (what the user later gets ECIES-encrypted).
 */
export async function encryptArtifact(
  plain: Uint8Array,
  signDigest: (digest: Hex) => Promise<Hex>,
  options: ArtifactOptions = {},
): Promise<{ encrypted: Uint8Array; key: Uint8Array }> {
  const chunkSize = chunkSizeOf(options)
  const key = new Uint8Array(randomBytes(KEY_BYTES))
  const iv = new Uint8Array(randomBytes(IV_BYTES))
  const chunkCount = Math.ceil(plain.length / chunkSize)
  const encrypted = new Uint8Array(SIGNATURE_BYTES + IV_BYTES + plain.length + chunkCount * TAG_BYTES)
  encrypted.set(iv, SIGNATURE_BYTES)
  const tags = new Uint8Array(chunkCount * TAG_BYTES)
  const counter = iv.slice()
  let out = SIGNATURE_BYTES + IV_BYTES
  for (let i = 0; i < chunkCount; i++) {
    const cipher = createCipheriv('aes-256-gcm', key, counter)
    const body = cipher.update(plain.subarray(i * chunkSize, (i + 1) * chunkSize))
    cipher.final()
    const tag = cipher.getAuthTag()
    encrypted.set(body, out)
    encrypted.set(tag, out + body.length)
    tags.set(tag, i * TAG_BYTES)
    out += body.length + TAG_BYTES
    increment(counter)
  }
  const signature = await signDigest(keccak256(tags))
  const signatureBytes = Buffer.from(signature.slice(2), 'hex')
  if (signatureBytes.length !== SIGNATURE_BYTES) throw new Error(`the signer gave ${signatureBytes.length} bytes`)
  encrypted.set(signatureBytes, 0)
  return { encrypted, key }
}

/**
 * Checks the signature over the tags (before decrypting anything), then decrypts and authenticates every chunk.
 * Throws ArtifactDecryptionError on any mismatch.
 */
export async function decryptArtifact(
  encrypted: Uint8Array,
  key: Uint8Array,
  teeSigner: Address,
  options: ArtifactOptions = {},
): Promise<Uint8Array> {
  const chunkSize = chunkSizeOf(options)
  if (key.length !== KEY_BYTES) throw new ArtifactDecryptionError(`the key is ${key.length} bytes, not ${KEY_BYTES}`)
  const header = SIGNATURE_BYTES + IV_BYTES
  if (encrypted.length < header) {
    throw new ArtifactDecryptionError(
      `the artifact is ${encrypted.length} bytes, shorter than its ${header}-byte header`,
    )
  }
  const chunks: { start: number; end: number }[] = []
  for (let start = header; start < encrypted.length; start += chunkSize + TAG_BYTES) {
    const end = Math.min(start + chunkSize + TAG_BYTES, encrypted.length)
    if (end - start <= TAG_BYTES) throw new ArtifactDecryptionError(`the chunk at byte ${start} is truncated`)
    chunks.push({ start, end })
  }
  const tags = new Uint8Array(chunks.length * TAG_BYTES)
  chunks.forEach(({ end }, i) => {
    tags.set(encrypted.subarray(end - TAG_BYTES, end), i * TAG_BYTES)
  })
  const signature = bytesToHex(encrypted.subarray(0, SIGNATURE_BYTES))
  let signer: Address
  try {
    signer = await recoverDigestAddress(keccak256(tags), signature)
  } catch (e) {
    throw new ArtifactDecryptionError('the artifact signature recovers to no key', { cause: e })
  }
  if (!isAddressEqual(signer, teeSigner)) {
    throw new ArtifactDecryptionError(`the artifact is signed by ${signer}, not the TEE signer ${teeSigner}`)
  }
  const counter = encrypted.slice(SIGNATURE_BYTES, header)
  const plain = new Uint8Array(encrypted.length - header - chunks.length * TAG_BYTES)
  let out = 0
  for (const [i, { start, end }] of chunks.entries()) {
    const decipher = createDecipheriv('aes-256-gcm', key, counter)
    decipher.setAuthTag(encrypted.subarray(end - TAG_BYTES, end))
    try {
      const body = Buffer.concat([decipher.update(encrypted.subarray(start, end - TAG_BYTES)), decipher.final()])
      plain.set(body, out)
      out += body.length
    } catch (e) {
      throw new ArtifactDecryptionError(`chunk ${i} fails authentication (wrong key or altered bytes)`, { cause: e })
    }
    increment(counter)
  }
  return plain
}

/** The root hash 0G puts on chain for a deliverable: keccak256 of the whole encrypted file (the SDK checks this). */
export function modelRootHash(encrypted: Uint8Array): Hex {
  return keccak256(encrypted)
}

function chunkSizeOf(options: ArtifactOptions): number {
  const size = options.chunkSize ?? ARTIFACT_CHUNK_BYTES
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`chunk size ${size} is not a positive integer`)
  return size
}

/** The SDK's IV step: +1, big-endian, carrying. */
function increment(iv: Uint8Array): void {
  for (let i = iv.length - 1; i >= 0; i--) {
    iv[i] = (iv[i]! + 1) & 0xff
    if (iv[i] !== 0) break
  }
}
