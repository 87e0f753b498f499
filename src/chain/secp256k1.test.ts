import { randomBytes } from 'node:crypto'
import { bytesToHex, type Hex, hashMessage, keccak256, recoverAddress, toBytes } from 'viem'
import { generatePrivateKey, privateKeyToAccount, sign } from 'viem/accounts'
import { describe, expect, it, vi } from 'vitest'
import {
  keccakBackend,
  personalMessageDigest,
  privateKeyAccount,
  recoverDigestAddress,
  secp256k1Backend,
  signDigest,
} from './secp256k1.ts'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

describe('secp256k1', () => {
  it('loads libsecp256k1 and the C keccak here (their prebuilt bindings ship for linux-x64)', () => {
    expect(secp256k1Backend).toBe('libsecp256k1')
    expect(keccakBackend).toBe('native')
  })

  it('signs byte for byte as viem does and recovers the signer, over many keys and digests', async () => {
    for (let i = 0; i < 50; i++) {
      const key = bytesToHex(randomBytes(32))
      const digest = keccak256(randomBytes(40))
      const ours = await signDigest(digest, key)
      expect(ours).toBe(await sign({ hash: digest, privateKey: key, to: 'hex' }))
      expect(await recoverDigestAddress(digest, ours)).toBe(privateKeyToAccount(key).address)
    }
  })

  it('signs EIP-191 messages as a viem account does', async () => {
    const key: Hex = `0x${'42'.repeat(32)}`
    const text = `${'ab'.repeat(32)}:${'cd'.repeat(32)}`
    expect(await signDigest(hashMessage(text), key)).toBe(await privateKeyToAccount(key).signMessage({ message: text }))
    expect(await signDigest(personalMessageDigest(text), key)).toBe(
      await privateKeyToAccount(key).signMessage({ message: text }),
    )
  })

  it("computes the EIP-191 digest as viem's hashMessage does, for any UTF-8 text and length", () => {
    const texts = ['', 'a', 'é ☃ 𝄞 日本語', 'x'.repeat(135), 'y'.repeat(136), 'z'.repeat(1000)]
    for (let i = 0; i < 20; i++) texts.push(randomBytes(i * 7).toString('base64'))
    for (const text of texts) expect(bytesToHex(personalMessageDigest(text))).toBe(hashMessage(text))
  })

  it('accepts v as 0/1 and as 27/28, and a high-s signature as ecrecover does', async () => {
    const key = bytesToHex(randomBytes(32))
    const digest = keccak256(randomBytes(8))
    const sig = await signDigest(digest, key)
    const address = privateKeyToAccount(key).address
    const v = Number.parseInt(sig.slice(-2), 16)
    const raw = `${sig.slice(0, -2)}${(v - 27).toString(16).padStart(2, '0')}` as Hex
    expect(await recoverDigestAddress(digest, raw)).toBe(address)
    // (r, N − s, flipped v) is the same signature's malleable twin: it recovers the same key.
    const s = BigInt(`0x${sig.slice(66, 130)}`)
    const twin = `${sig.slice(0, 66)}${(N - s).toString(16).padStart(64, '0')}${v === 27 ? '1c' : '1b'}` as Hex
    expect(await recoverDigestAddress(digest, twin)).toBe(address)
    expect(await recoverAddress({ hash: digest, signature: twin })).toBe(address)
  })

  it('refuses signatures that are not 65 bytes, carry another v, or recover to no point', async () => {
    const digest = keccak256('0x01')
    await expect(recoverDigestAddress(digest, `0x${'11'.repeat(64)}`)).rejects.toThrow(/64 bytes, not 65/)
    await expect(recoverDigestAddress(digest, `0x${'11'.repeat(64)}1d`)).rejects.toThrow(/v = 29/)
    // r = 0 is no point on the curve.
    await expect(recoverDigestAddress(digest, `0x${'00'.repeat(32)}${'11'.repeat(32)}1b`)).rejects.toThrow()
  })

  it("falls back to viem's JavaScript curve with the same results (ZG_PURE_JS_SECP256K1=1)", async () => {
    vi.stubEnv('ZG_PURE_JS_SECP256K1', '1')
    vi.resetModules()
    try {
      const js = await import('./secp256k1.ts')
      expect(js.secp256k1Backend).toBe('js')
      expect(js.keccakBackend).toBe('js')
      for (const text of ['', 'é ☃ 𝄞', 'y'.repeat(136), 'z'.repeat(1000)])
        expect(bytesToHex(js.personalMessageDigest(text))).toBe(bytesToHex(personalMessageDigest(text)))
      const key = bytesToHex(randomBytes(32))
      const digest = keccak256(randomBytes(16))
      const sig = await js.signDigest(digest, key)
      expect(sig).toBe(await signDigest(digest, key))
      expect(await js.recoverDigestAddress(digest, sig)).toBe(privateKeyToAccount(key).address)
      // Digests given as bytes, as the response-signature path gives them.
      const bytes = personalMessageDigest('hello')
      expect(await js.signDigest(bytes, key)).toBe(await signDigest(bytes, key))
      expect(await js.recoverDigestAddress(bytes, sig)).toBe(await recoverDigestAddress(bytes, sig))
    } finally {
      vi.unstubAllEnvs()
      vi.resetModules()
    }
  })
})

describe('privateKeyAccount', () => {
  it('signs messages, text and raw, exactly as viem does', async () => {
    const key = generatePrivateKey()
    const fast = privateKeyAccount(key)
    const viemAccount = privateKeyToAccount(key)
    expect(fast.address).toBe(viemAccount.address)
    for (const message of ['hello', '{"receipt":"ünïcode ✓"}', { raw: keccak256(toBytes('raw bytes')) }] as const) {
      expect(await fast.signMessage({ message })).toBe(await viemAccount.signMessage({ message }))
    }
  })
})
