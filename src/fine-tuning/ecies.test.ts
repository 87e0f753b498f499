import { bytesToHex, hexToBytes } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { eciesDecrypt, eciesEncrypt } from './ecies.ts'
import { sdkEncrypt as sdk } from './test-support.ts'

describe('ECIES (eciesjs 0.4.18, as 0G)', () => {
  it("the SDK's eciesDecrypt recovers what we encrypt to a viem account's public key", async () => {
    const privateKey = generatePrivateKey()
    const { publicKey } = privateKeyToAccount(privateKey)
    const key = new Uint8Array(32).map((_, i) => i * 7 + 1)
    const encrypted = eciesEncrypt(publicKey, key)
    expect(hexToBytes(encrypted).length).toBe(65 + 16 + 16 + 32)
    expect(await sdk.eciesDecrypt({ privateKey }, encrypted)).toBe(bytesToHex(key).slice(2))
    expect(await sdk.eciesDecrypt({ privateKey }, encrypted.slice(2))).toBe(bytesToHex(key).slice(2))
    expect(eciesDecrypt(privateKey, encrypted)).toEqual(key)
  })

  it('another key cannot open it', () => {
    const { publicKey } = privateKeyToAccount(generatePrivateKey())
    const encrypted = eciesEncrypt(publicKey, new Uint8Array(32))
    expect(() => eciesDecrypt(generatePrivateKey(), encrypted)).toThrow()
  })
})
