import { randomUUID } from 'node:crypto'
import { keccak256, toBeArray, toUtf8Bytes, Wallet } from 'ethers'
import { getAddress, type Hex, recoverMessageAddress } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import {
  cancelDigest,
  datasetUploadDigest,
  InvalidTaskIdError,
  loraDownloadDigest,
  recoverUser,
  signUserDigest,
  taskDigest,
} from './signatures.ts'
import { sdkEncrypt as sdk } from './test-support.ts'

const privateKey = generatePrivateKey()
const account = privateKeyToAccount(privateKey)
// The SDK signs with an ethers Wallet; the same key on both sides.
const wallet = new Wallet(privateKey)
const user = getAddress(account.address)

async function expectSameAsSdk(digest: Hex, sdkSignature: string) {
  expect(await signUserDigest(account, digest)).toBe(sdkSignature)
  expect(await recoverUser(digest, sdkSignature as Hex)).toEqual({
    address: account.address,
    publicKey: account.publicKey,
  })
}

describe("the user's fine-tuning signatures (as the SDK makes them)", () => {
  it('task creation: packed (address, uint256, string)', async () => {
    const nonce = BigInt(Date.now()) * 10_000n + 40n
    const datasetHash = `0x${'ab'.repeat(32)}`
    await expectSameAsSdk(taskDigest(user, nonce, datasetHash), await sdk.signRequest(wallet, user, nonce, datasetHash))
    expect(taskDigest(user.toLowerCase() as Hex, nonce, datasetHash)).toBe(taskDigest(user, nonce, datasetHash))
  })

  it('cancel: the uuid bytes', async () => {
    const id = randomUUID()
    await expectSameAsSdk(cancelDigest(id), await sdk.signTaskID(wallet, id))
    expect(cancelDigest(id.toUpperCase())).toBe(cancelDigest(id))
    expect(() => cancelDigest('not-a-uuid')).toThrow(InvalidTaskIdError)
  })

  it('dataset upload: user text + unix seconds', async () => {
    const timestamp = Math.floor(Date.now() / 1000)
    await expectSameAsSdk(datasetUploadDigest(user, timestamp), await sdk.signDatasetUpload(wallet, user, timestamp))
    // The address text is part of the message: another spelling is another message.
    expect(datasetUploadDigest(user.toLowerCase(), timestamp)).not.toBe(datasetUploadDigest(user, timestamp))
  })

  it('LoRA download: uuid hex + unix seconds (the SDK inlines it in provider.js)', async () => {
    const id = randomUUID()
    const timestamp = 1_790_000_000
    const sdkSignature = await wallet.signMessage(
      toBeArray(keccak256(toUtf8Bytes(`${id.replace(/-/g, '')}${timestamp}`))),
    )
    await expectSameAsSdk(loraDownloadDigest(id, timestamp), sdkSignature)
  })

  it('recovers another signer as that signer, and the digest bytes are what is signed (not their hex text)', async () => {
    const digest = cancelDigest(randomUUID())
    const other = privateKeyToAccount(generatePrivateKey())
    expect((await recoverUser(digest, await signUserDigest(other, digest))).address).toBe(other.address)
    expect(
      await recoverMessageAddress({ message: { raw: digest }, signature: await signUserDigest(account, digest) }),
    ).toBe(account.address)
  })
})
