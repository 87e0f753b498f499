import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, type Hex, keccak256 } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, describe, expect, it } from 'vitest'
import { signDigest } from '../chain/secp256k1.ts'
import {
  ARTIFACT_CHUNK_BYTES,
  ArtifactDecryptionError,
  decryptArtifact,
  encryptArtifact,
  modelRootHash,
} from './artifact.ts'
import { sdkEncrypt } from './test-support.ts'

const dir = await mkdtemp(join(tmpdir(), 'zg-artifact-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

const teeKey = generatePrivateKey()
const tee = privateKeyToAccount(teeKey)
const sign = (digest: Hex) => signDigest(digest, teeKey)

/** The SDK's own aesGCMDecryptToFile, on files. */
async function sdkDecrypt(encrypted: Uint8Array, key: Uint8Array, signer: string): Promise<Uint8Array> {
  const name = randomBytes(6).toString('hex')
  await writeFile(join(dir, `${name}.enc`), encrypted)
  await sdkEncrypt.aesGCMDecryptToFile(
    bytesToHex(key).slice(2),
    join(dir, `${name}.enc`),
    join(dir, `${name}.out`),
    signer,
  )
  return new Uint8Array(await readFile(join(dir, `${name}.out`)))
}

describe('encrypted artifact (0G layout)', () => {
  it('sig(65) ‖ iv(12) ‖ ciphertext ‖ tag(16); the SDK decrypts it and accepts our signature', async () => {
    const plain = new Uint8Array(randomBytes(100_000))
    const { encrypted, key } = await encryptArtifact(plain, sign)
    expect(key.length).toBe(32)
    expect(encrypted.length).toBe(65 + 12 + plain.length + 16)
    expect(await sdkDecrypt(encrypted, key, tee.address)).toEqual(plain)
    expect(await decryptArtifact(encrypted, key, tee.address)).toEqual(plain)
    expect(modelRootHash(encrypted)).toBe(keccak256(encrypted))
  })

  it('the SDK refuses a signature by another key', async () => {
    const { encrypted, key } = await encryptArtifact(new Uint8Array(10), sign)
    const stranger = privateKeyToAccount(generatePrivateKey()).address
    await expect(sdkDecrypt(encrypted, key, stranger)).rejects.toThrow('Invalid tag signature')
  })

  it("several chunks at the SDK's real 64 MiB size: IV incremented per chunk, signature over all the tags", async () => {
    const plain = new Uint8Array(ARTIFACT_CHUNK_BYTES + 1000)
    plain[0] = 1
    plain[ARTIFACT_CHUNK_BYTES] = 2
    plain[plain.length - 1] = 3
    const { encrypted, key } = await encryptArtifact(plain, sign)
    expect(encrypted.length).toBe(65 + 12 + plain.length + 2 * 16)
    // Buffer.equals, not toEqual: a deep comparison of 64 Mi elements takes most of a minute.
    expect(Buffer.from(await sdkDecrypt(encrypted, key, tee.address)).equals(plain)).toBe(true)
  }, 30_000)

  it('small chunk sizes round-trip, including an IV that carries across bytes', async () => {
    const plain = new Uint8Array(randomBytes(1000))
    for (const chunkSize of [1, 7, 999, 1000, 1001]) {
      const { encrypted, key } = await encryptArtifact(plain, sign, { chunkSize })
      expect(encrypted.length).toBe(77 + plain.length + Math.ceil(plain.length / chunkSize) * 16)
      expect(await decryptArtifact(encrypted, key, tee.address, { chunkSize })).toEqual(plain)
    }
    const empty = await encryptArtifact(new Uint8Array(0), sign)
    expect(await decryptArtifact(empty.encrypted, empty.key, tee.address)).toEqual(new Uint8Array(0))
  })

  it('refuses a tampered byte, a wrong key, a wrong signer and a truncated file', async () => {
    const plain = new Uint8Array(randomBytes(300))
    const { encrypted, key } = await encryptArtifact(plain, sign, { chunkSize: 100 })
    const opts = { chunkSize: 100 }
    const refuse = (bytes: Uint8Array, k = key, signer = tee.address) =>
      expect(decryptArtifact(bytes, k, signer, opts)).rejects.toBeInstanceOf(ArtifactDecryptionError)

    for (const at of [0, 70, 80, 150, encrypted.length - 1]) {
      const tampered = encrypted.slice()
      tampered[at]! ^= 0x01
      await refuse(tampered)
    }
    const wrongKey = key.slice()
    wrongKey[0]! ^= 1
    await refuse(encrypted, wrongKey)
    await expect(
      decryptArtifact(encrypted, key, privateKeyToAccount(generatePrivateKey()).address, opts),
    ).rejects.toThrow(/signed by 0x[0-9a-fA-F]{40}, not the TEE signer/)
    await refuse(encrypted.subarray(0, 50))
    await refuse(encrypted.subarray(0, encrypted.length - 100))
    await refuse(encrypted, key.subarray(0, 16))
  })
})
