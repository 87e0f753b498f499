import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getAddress, keccak256, recoverAddress, recoverMessageAddress, recoverTypedDataAddress, toHex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, describe, expect, it } from 'vitest'
import { TEE_SETTLEMENT_TYPES } from '../chain/tee-settlement.ts'
import { createInsecureDevSigner } from './dev-signer.ts'
import { responseSignatureText, verifyResponseSignature } from './response-signature.ts'
import { accountTeeSigner, checkAttestationNonce, InvalidAttestationNonceError, signChat } from './tee-signer.ts'

const dir = await mkdtemp(join(tmpdir(), 'zg-tee-signer-'))
afterAll(() => rm(dir, { recursive: true, force: true }))
const signer = await createInsecureDevSigner({ keyFile: join(dir, 'k') })

describe('TeeSigner over a local key', () => {
  it('signChat signs sha256(req):sha256(resp) and the result verifies with content binding', async () => {
    const req = new TextEncoder().encode('{"model":"m","messages":[]}')
    const resp = 'data: {"choices":[]}\n\ndata: [DONE]\n\n'
    const sig = await signChat(signer, req, resp)
    expect(sig).toMatchObject({
      text: responseSignatureText(req, resp),
      signing_address: signer.address,
      signing_algo: 'ecdsa',
    })
    expect(['1b', '1c']).toContain(sig.signature.slice(-2))
    expect(
      await verifyResponseSignature({
        signature: sig,
        expectedSigner: signer.address,
        requestBody: req,
        responseBody: resp,
      }),
    ).toEqual({ ok: true })
  })

  it('signMessage is EIP-191 over the UTF-8 text', async () => {
    const signature = await signer.signMessage('héllo')
    expect(await recoverMessageAddress({ message: 'héllo', signature })).toBe(signer.address)
  })

  it('signTypedData signs EIP-712 (the 0G TEESettlement shape)', async () => {
    const typedData = {
      domain: {
        name: '0G Inference Serving',
        version: '1',
        chainId: 16602,
        verifyingContract: getAddress('0xa79f4c8311ff93c06b8cfb403690cc987c93f91e'),
      },
      types: TEE_SETTLEMENT_TYPES,
      primaryType: 'TEESettlement',
      message: {
        requestsHash: `0x${'11'.repeat(32)}`,
        nonce: 17_600_000_000_000_000n,
        provider: signer.address,
        user: getAddress('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266'),
        totalFee: 123n,
      },
    } as const
    const signature = await signer.signTypedData(typedData)
    expect(await recoverTypedDataAddress({ ...typedData, signature })).toBe(signer.address)
  })

  it('signDigest is raw ECDSA over the digest (no EIP-191 prefix), v = 27/28, on the native and the account path', async () => {
    const digest = keccak256(toHex('tags of an artifact'))
    const privateKey = generatePrivateKey()
    const account = privateKeyToAccount(privateKey)
    const attestation = async () => {
      throw new Error('not used')
    }
    const native = accountTeeSigner({ kind: 'insecure-dev', account, privateKey, attestation })
    const viaAccount = accountTeeSigner({ kind: 'insecure-dev', account, attestation })
    for (const s of [signer, native, viaAccount]) {
      const signature = await s.signDigest(digest)
      expect(signature).toMatch(/^0x[0-9a-f]{128}(1b|1c)$/)
      expect(await recoverAddress({ hash: digest, signature })).toBe(s.address)
    }
    expect(await native.signDigest(digest)).toBe(await viaAccount.signDigest(digest))
  })

  it('checkAttestationNonce accepts 32-byte 0x-hex only', () => {
    expect(() => checkAttestationNonce(undefined)).not.toThrow()
    expect(() => checkAttestationNonce(`0x${'Ab'.repeat(32)}`)).not.toThrow()
    for (const bad of ['', '0x', 'ab'.repeat(32), `0x${'ab'.repeat(31)}`, `0x${'zz'.repeat(32)}`]) {
      expect(() => checkAttestationNonce(bad)).toThrow(InvalidAttestationNonceError)
    }
  })
})
