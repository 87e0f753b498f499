import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256, recoverAddress, toHex } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { createInsecureDevSigner, DevSignerKeyFileError } from './dev-signer.ts'
import { INSECURE_DEV_SIGNER_MESSAGE, InvalidAttestationNonceError } from './tee-signer.ts'

const dir = await mkdtemp(join(tmpdir(), 'zg-dev-signer-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('createInsecureDevSigner', () => {
  it('creates the key file (0600, in a new directory) and keeps the address across restarts', async () => {
    const keyFile = join(dir, 'nested', 'tee-signer.key')
    const first = await createInsecureDevSigner({ keyFile })
    expect(first.kind).toBe('insecure-dev')
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
    expect((await readFile(keyFile, 'utf8')).trim()).toMatch(/^0x[0-9a-f]{64}$/)
    const second = await createInsecureDevSigner({ keyFile })
    expect(second.address).toBe(first.address)
  })

  it('concurrent first starts agree on one key', async () => {
    const keyFile = join(dir, 'race.key')
    const signers = await Promise.all(Array.from({ length: 8 }, () => createInsecureDevSigner({ keyFile })))
    expect(new Set(signers.map((s) => s.address)).size).toBe(1)
  })

  it('loads an existing key, with or without 0x', async () => {
    const keyFile = join(dir, 'given.key')
    // Public Hardhat/Anvil dev key #0.
    await writeFile(keyFile, 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n')
    expect((await createInsecureDevSigner({ keyFile })).address).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266')
  })

  it('refuses a key file that holds no key, without echoing its content', async () => {
    const keyFile = join(dir, 'bad.key')
    await writeFile(keyFile, 'secret-ish-garbage')
    const error = await createInsecureDevSigner({ keyFile }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DevSignerKeyFileError)
    expect((error as DevSignerKeyFileError).keyFile).toBe(keyFile)
    expect((error as Error).message).not.toContain('secret-ish-garbage')
  })

  it('signs a raw digest with its key', async () => {
    const signer = await createInsecureDevSigner({ keyFile: join(dir, 'digest.key') })
    const digest = keccak256(toHex('digest'))
    expect(await recoverAddress({ hash: digest, signature: await signer.signDigest(digest) })).toBe(signer.address)
  })

  it('attests honestly: no TEE, no quote, nonce echoed', async () => {
    const signer = await createInsecureDevSigner({ keyFile: join(dir, 'att.key') })
    expect(await signer.attestation()).toEqual({
      tee: 'none',
      insecure: true,
      signing_address: signer.address,
      signing_algo: 'ecdsa',
      quote: null,
      message: INSECURE_DEV_SIGNER_MESSAGE,
    })
    const nonce = `0x${'5a'.repeat(32)}` as const
    expect(await signer.attestation(nonce)).toMatchObject({ tee: 'none', quote: null, nonce })
    await expect(signer.attestation('0x1234')).rejects.toBeInstanceOf(InvalidAttestationNonceError)
  })
})
