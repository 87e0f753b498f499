import { InferenceRequestProcessor } from '@0gfoundation/0g-compute-ts-sdk'
import { keccak256 as ethersKeccak256, getBytes, toUtf8Bytes, verifyMessage, Wallet } from 'ethers'
import { type Address, getAddress, type Hex, keccak256, toBytes } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import {
  checkSessionTokenClaims,
  checkSessionTokenRevocation,
  createSessionToken,
  EPHEMERAL_TOKEN_ID,
  MAX_EPHEMERAL_LIFETIME_MS,
  type ParsedSessionToken,
  parseSessionToken,
  recoverSessionTokenSigner,
  SessionTokenError,
  type SessionTokenErrorCode,
} from './session-token.ts'

// Public Anvil/Hardhat dev key #1 as the user; an arbitrary second key; dev account #3 as the provider.
const USER_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'
const OTHER_KEY: Hex = `0x${'42'.repeat(32)}`
const user = privateKeyToAccount(USER_KEY)
const PROVIDER = getAddress('0x90f79bf6eb2c4f870365e785982e1f101e93b906')
const NOW = 1_767_225_600_000 // 2026-01-01T00:00:00Z
const KEY_ORDER = ['address', 'provider', 'timestamp', 'expiresAt', 'nonce', 'generation', 'tokenId']

/** Builds an app-sk- token around an arbitrary payload, to reach the parser's error paths. */
const tokenOf = (payload: string) => `app-sk-${Buffer.from(payload, 'utf8').toString('base64')}`

async function signedToken(claims: Record<string, unknown>, key: Hex = USER_KEY): Promise<string> {
  const raw = JSON.stringify(claims)
  const sig = await privateKeyToAccount(key).signMessage({ message: { raw: keccak256(toBytes(raw)) } })
  return tokenOf(`${raw}|${sig}`)
}

function codeOf(fn: () => unknown): SessionTokenErrorCode | undefined {
  try {
    fn()
  } catch (e) {
    if (e instanceof SessionTokenError) return e.code
    throw e
  }
  return undefined
}

async function asyncCodeOf(p: Promise<unknown>): Promise<SessionTokenErrorCode | undefined> {
  try {
    await p
  } catch (e) {
    if (e instanceof SessionTokenError) return e.code
    throw e
  }
  return undefined
}

describe('createSessionToken / parseSessionToken', () => {
  it('round-trips an ephemeral token and recovers the signer', async () => {
    const { token, claims, rawMessage } = await createSessionToken({
      account: user,
      provider: PROVIDER,
      generation: 3n,
      now: NOW,
    })
    expect(token.startsWith('app-sk-')).toBe(true)
    expect(claims).toMatchObject({
      address: user.address,
      provider: PROVIDER,
      timestamp: NOW,
      expiresAt: NOW + MAX_EPHEMERAL_LIFETIME_MS,
      generation: 3,
      tokenId: EPHEMERAL_TOKEN_ID,
    })
    expect(claims.nonce).toMatch(/^\d+-[0-9a-z]+$/)
    expect(claims.nonce).toHaveLength(32)

    for (const header of [token, `Bearer ${token}`, `bearer ${token}`, `BEARER  ${token}`]) {
      const parsed = parseSessionToken(header)
      expect(parsed.claims).toEqual(claims)
      expect(parsed.rawMessage).toBe(rawMessage)
      expect(await recoverSessionTokenSigner(parsed)).toBe(user.address)
      checkSessionTokenClaims(parsed, { provider: PROVIDER, now: NOW + 1000 })
      checkSessionTokenRevocation(parsed, { generation: 3n, revokedBitmap: 0n })
    }
  })

  it('writes rawMessage with the SDK key order and signs keccak256(rawMessage) with v = 27/28', async () => {
    const { token, rawMessage } = await createSessionToken({ account: user, provider: PROVIDER, generation: 0 })
    expect(Object.keys(JSON.parse(rawMessage))).toEqual(KEY_ORDER)
    const decoded = Buffer.from(token.slice('app-sk-'.length), 'base64').toString('utf8')
    const [raw, sig] = decoded.split('|') as [string, Hex]
    expect(raw).toBe(rawMessage)
    expect(sig).toMatch(/^0x[0-9a-f]{130}$/)
    expect(['1b', '1c']).toContain(sig.slice(-2))
    // The provider's check, done with an independent library: EIP-191 over the 32-byte hash.
    expect(verifyMessage(getBytes(ethersKeccak256(toUtf8Bytes(raw))), sig)).toBe(user.address)
  })

  it('makes persistent tokens: tokenId 0–254, lifetime 0 = never by default', async () => {
    const never = await createSessionToken({ account: user, provider: PROVIDER, generation: 1, tokenId: 4, now: NOW })
    expect(never.claims).toMatchObject({ tokenId: 4, expiresAt: 0 })
    const parsed = parseSessionToken(never.token)
    checkSessionTokenClaims(parsed, { provider: PROVIDER, now: NOW + 10 * MAX_EPHEMERAL_LIFETIME_MS })

    const week = 7 * MAX_EPHEMERAL_LIFETIME_MS
    const long = await createSessionToken({
      account: user,
      provider: PROVIDER,
      generation: 1,
      tokenId: 0,
      lifetimeMs: week,
      now: NOW,
    })
    expect(long.claims.expiresAt).toBe(NOW + week)
  })

  it('refuses to create tokens the provider would reject', async () => {
    await expect(
      createSessionToken({
        account: user,
        provider: PROVIDER,
        generation: 0,
        lifetimeMs: MAX_EPHEMERAL_LIFETIME_MS + 1,
      }),
    ).rejects.toMatchObject({ code: 'ephemeral_too_long' })
    await expect(
      createSessionToken({ account: user, provider: PROVIDER, generation: 0, lifetimeMs: 0 }),
    ).rejects.toThrow(RangeError)
    await expect(
      createSessionToken({ account: user, provider: PROVIDER, generation: 0, tokenId: 256 }),
    ).rejects.toThrow(RangeError)
    await expect(createSessionToken({ account: user, provider: PROVIDER, generation: -1 })).rejects.toThrow(RangeError)
  })

  it('splits on the last "|": a nonce containing "|" still parses and verifies', async () => {
    const claims = {
      address: user.address,
      provider: PROVIDER,
      timestamp: NOW,
      expiresAt: NOW + 1000,
      nonce: 'a|b|c',
      generation: 0,
      tokenId: 255,
    }
    const parsed = parseSessionToken(await signedToken(claims))
    expect(parsed.claims.nonce).toBe('a|b|c')
    expect(await recoverSessionTokenSigner(parsed)).toBe(user.address)
  })

  it('keeps rawMessage byte-exact (the signature covers it), even with another key order or case', async () => {
    const claims = {
      tokenId: 255,
      address: user.address.toLowerCase(),
      provider: PROVIDER.toLowerCase(),
      timestamp: NOW,
      expiresAt: NOW + 1000,
      nonce: 'n',
      generation: 0,
    }
    const parsed = parseSessionToken(await signedToken(claims))
    expect(parsed.rawMessage).toBe(JSON.stringify(claims))
    expect(parsed.claims.address).toBe(user.address)
    expect(await recoverSessionTokenSigner(parsed)).toBe(user.address)
  })
})

describe('SessionTokenError codes', () => {
  const good = {
    address: user.address,
    provider: PROVIDER,
    timestamp: NOW,
    expiresAt: NOW + 1000,
    nonce: 'n',
    generation: 2,
    tokenId: 255,
  }
  const SIG = `0x${'11'.repeat(64)}1b`

  it('malformed: prefix, base64, split, JSON, fields', () => {
    const raw = JSON.stringify(good)
    const cases: string[] = [
      '',
      'Bearer sk-abc',
      'Basic app-sk-abc',
      'app-sk-',
      'app-sk-!!!!',
      'app-sk-YWJj*',
      'app-sk-A',
      `app-sk-${Buffer.from([0xff, 0xfe, 0x7c]).toString('base64')}`, // not UTF-8
      tokenOf(raw), // no "|"
      tokenOf(`${raw}|0x1234`), // short signature
      tokenOf(`${raw}|${SIG}|`), // last part empty
      tokenOf(`{not json|${SIG}`),
      tokenOf(`[1,2]|${SIG}`),
      tokenOf(`null|${SIG}`),
      ...Object.keys(good).map((k) => {
        const { [k as keyof typeof good]: _, ...rest } = good
        return tokenOf(`${JSON.stringify(rest)}|${SIG}`)
      }),
      tokenOf(`${JSON.stringify({ ...good, address: 'me' })}|${SIG}`),
      tokenOf(`${JSON.stringify({ ...good, provider: 42 })}|${SIG}`),
      tokenOf(`${JSON.stringify({ ...good, timestamp: String(NOW) })}|${SIG}`),
      tokenOf(`${JSON.stringify({ ...good, expiresAt: 1.5 })}|${SIG}`),
      tokenOf(`${JSON.stringify({ ...good, generation: -1 })}|${SIG}`),
      tokenOf(`${JSON.stringify({ ...good, tokenId: 256 })}|${SIG}`),
      tokenOf(`${JSON.stringify({ ...good, nonce: 7 })}|${SIG}`),
    ]
    for (const header of cases) {
      expect(
        codeOf(() => parseSessionToken(header)),
        header,
      ).toBe('malformed')
    }
    expect(codeOf(() => parseSessionToken(tokenOf(`${raw}|${SIG}`)))).toBeUndefined()
  })

  const parsedWith = (claims: Partial<typeof good>): ParsedSessionToken => ({
    claims: { ...good, ...claims } as ParsedSessionToken['claims'],
    rawMessage: '{}',
    signature: SIG as Hex,
  })

  it('wrong_provider (compared case-insensitively)', () => {
    expect(codeOf(() => checkSessionTokenClaims(parsedWith({}), { provider: user.address, now: NOW }))).toBe(
      'wrong_provider',
    )
    const lower = PROVIDER.toLowerCase() as Address
    expect(codeOf(() => checkSessionTokenClaims(parsedWith({}), { provider: lower, now: NOW }))).toBeUndefined()
  })

  it('ephemeral_too_long: no expiry, or more than 24 h', () => {
    const check = (c: Partial<typeof good>) =>
      codeOf(() => checkSessionTokenClaims(parsedWith(c), { provider: PROVIDER, now: NOW }))
    expect(check({ expiresAt: 0 })).toBe('ephemeral_too_long')
    expect(check({ expiresAt: NOW + MAX_EPHEMERAL_LIFETIME_MS + 1 })).toBe('ephemeral_too_long')
    expect(check({ expiresAt: NOW + MAX_EPHEMERAL_LIFETIME_MS })).toBeUndefined()
    // Persistent tokens may last forever or longer than 24 h.
    expect(check({ tokenId: 0, expiresAt: 0 })).toBeUndefined()
    expect(check({ tokenId: 254, expiresAt: NOW + 30 * MAX_EPHEMERAL_LIFETIME_MS })).toBeUndefined()
  })

  it('expired: now > expiresAt fails, now == expiresAt passes', () => {
    const at = (now: number, c: Partial<typeof good> = {}) =>
      codeOf(() => checkSessionTokenClaims(parsedWith(c), { provider: PROVIDER, now }))
    expect(at(NOW + 1000)).toBeUndefined()
    expect(at(NOW + 1001)).toBe('expired')
    expect(at(NOW + 1001, { tokenId: 3 })).toBe('expired')
    // Order: the ephemeral rule is checked before expiry, as the provider does.
    expect(at(NOW + 10 * MAX_EPHEMERAL_LIFETIME_MS, { expiresAt: 0 })).toBe('ephemeral_too_long')
  })

  it('generation_mismatch and revoked', () => {
    const check = (c: Partial<typeof good>, generation: bigint, revokedBitmap: bigint) =>
      codeOf(() => checkSessionTokenRevocation(parsedWith(c), { generation, revokedBitmap }))
    expect(check({}, 3n, 0n)).toBe('generation_mismatch') // revoked by revokeAllTokens
    expect(check({}, 1n, 0n)).toBe('generation_mismatch') // from the future
    expect(check({}, 2n, 0n)).toBeUndefined()
    expect(check({ tokenId: 5 }, 2n, 1n << 5n)).toBe('revoked')
    expect(check({ tokenId: 5 }, 2n, (1n << 4n) | (1n << 6n))).toBeUndefined()
    // Ephemeral tokens ignore the bitmap, even bit 255.
    expect(check({}, 2n, (1n << 256n) - 1n)).toBeUndefined()
  })

  it('bad_signature: v not 27/28, or unrecoverable', async () => {
    const { token } = await createSessionToken({ account: user, provider: PROVIDER, generation: 0 })
    const parsed = parseSessionToken(token)
    const v0 = `${parsed.signature.slice(0, -2)}00` as Hex
    expect(await asyncCodeOf(recoverSessionTokenSigner({ ...parsed, signature: v0 }))).toBe('bad_signature')
    const zeroR = `0x${'00'.repeat(64)}1b` as Hex
    expect(await asyncCodeOf(recoverSessionTokenSigner({ ...parsed, signature: zeroR }))).toBe('bad_signature')
  })

  it('a token signed by another wallet recovers to that wallet (the caller compares with claims.address)', async () => {
    const parsed = parseSessionToken(await signedToken(good, OTHER_KEY))
    expect(await recoverSessionTokenSigner(parsed)).toBe(privateKeyToAccount(OTHER_KEY).address)
    expect(await recoverSessionTokenSigner(parsed)).not.toBe(parsed.claims.address)
  })
})

/**
 * Interop with the official SDK (@0gfoundation/0g-compute-ts-sdk 0.9.0). The token is produced by the SDK's own
 * code: `InferenceRequestProcessor` (public export; class `RequestProcessor` extends `ZGServingUserBrokerBase`,
 * whose `generateSessionToken`/`getHeader`/`createApiKey` in `lib.commonjs/inference/broker/base.js` — the ESM
 * bundle carries the same code — build and sign it). Those methods touch only `contract.getUserAddress()`,
 * `contract.getAccount(provider)` (acknowledged, generation, revokedBitmap), `contract.signer.signMessage` and a
 * cache with getItem/setItem; the doubles below provide exactly that, with a real ethers v6 Wallet as signer.
 */
describe('interop with the official 0G SDK 0.9.0', () => {
  function sdkProcessor(wallet: Wallet, account: { generation: bigint; revokedBitmap: bigint }) {
    const contract = {
      signer: wallet,
      getUserAddress: () => wallet.address,
      getAccount: async () => ({ acknowledged: true, ...account }),
    }
    const store = new Map<string, unknown>()
    const cache = {
      getItem: (key: string) => store.get(key) ?? null,
      setItem: (key: string, value: unknown) => void store.set(key, value),
    }
    type Args = ConstructorParameters<typeof InferenceRequestProcessor>
    return new InferenceRequestProcessor(
      contract as unknown as Args[0],
      {} as Args[1],
      cache as unknown as Args[2],
      {} as Args[3],
    )
  }

  it('parses, checks and recovers an ephemeral token from the SDK getHeader()', async () => {
    const wallet = new Wallet(USER_KEY)
    const sdk = sdkProcessor(wallet, { generation: 7n, revokedBitmap: 0n })
    const before = Date.now()
    const headers = await sdk.getHeader(PROVIDER)
    const auth = headers.Authorization
    expect(auth).toMatch(/^Bearer app-sk-/)

    const parsed = parseSessionToken(auth as string)
    expect(Object.keys(JSON.parse(parsed.rawMessage))).toEqual(KEY_ORDER)
    expect(parsed.claims.address).toBe(user.address)
    expect(parsed.claims.provider).toBe(PROVIDER)
    expect(parsed.claims.tokenId).toBe(EPHEMERAL_TOKEN_ID)
    expect(parsed.claims.generation).toBe(7)
    expect(parsed.claims.timestamp).toBeGreaterThanOrEqual(before)
    expect(parsed.claims.expiresAt - parsed.claims.timestamp).toBe(MAX_EPHEMERAL_LIFETIME_MS)
    expect(parsed.claims.nonce).toHaveLength(32)
    expect(parsed.signature).toMatch(/(1b|1c)$/)

    expect(await recoverSessionTokenSigner(parsed)).toBe(user.address)
    checkSessionTokenClaims(parsed, { provider: PROVIDER.toLowerCase() as Address })
    checkSessionTokenRevocation(parsed, { generation: 7n, revokedBitmap: 0n })
    expect(codeOf(() => checkSessionTokenRevocation(parsed, { generation: 8n, revokedBitmap: 0n }))).toBe(
      'generation_mismatch',
    )

    // Signing the SDK's raw message our way gives the SDK's signature byte for byte (RFC 6979 is deterministic).
    const ours = await user.signMessage({ message: { raw: keccak256(toBytes(parsed.rawMessage)) } })
    expect(ours).toBe(parsed.signature)
  })

  it('parses a persistent API key from the SDK createApiKey() (bare app-sk-, expiresAt 0)', async () => {
    const wallet = new Wallet(USER_KEY)
    const sdk = sdkProcessor(wallet, { generation: 2n, revokedBitmap: 1n << 3n })
    const key = await sdk.createApiKey(PROVIDER, { tokenId: 4 })
    expect(key.rawToken).toMatch(/^app-sk-/)
    const parsed = parseSessionToken(key.rawToken)
    expect(parsed.claims).toMatchObject({ tokenId: 4, expiresAt: 0, generation: 2 })
    expect(await recoverSessionTokenSigner(parsed)).toBe(user.address)
    checkSessionTokenClaims(parsed, { provider: PROVIDER, now: Date.now() + 365 * MAX_EPHEMERAL_LIFETIME_MS })
    checkSessionTokenRevocation(parsed, { generation: 2n, revokedBitmap: 1n << 3n })
    expect(codeOf(() => checkSessionTokenRevocation(parsed, { generation: 2n, revokedBitmap: 1n << 4n }))).toBe(
      'revoked',
    )
  })

  it('produces tokens of the same shape as the SDK', async () => {
    const sdkAuth = (
      await sdkProcessor(new Wallet(USER_KEY), { generation: 1n, revokedBitmap: 0n }).getHeader(PROVIDER)
    ).Authorization as string
    const ours = await createSessionToken({ account: user, provider: PROVIDER, generation: 1 })
    const sdkParsed = parseSessionToken(sdkAuth)
    const ourParsed = parseSessionToken(ours.token)
    expect(Object.keys(JSON.parse(ourParsed.rawMessage))).toEqual(Object.keys(JSON.parse(sdkParsed.rawMessage)))
    for (const key of KEY_ORDER) {
      expect(typeof JSON.parse(ourParsed.rawMessage)[key]).toBe(typeof JSON.parse(sdkParsed.rawMessage)[key])
    }
    expect(ourParsed.claims.nonce).toHaveLength(sdkParsed.claims.nonce.length)
    expect(ourParsed.claims.nonce).toMatch(/^\d{13}-[0-9a-z]+$/)
    expect(sdkParsed.claims.nonce).toMatch(/^\d{13}-[0-9a-z]+$/)
    expect(ours.claims.expiresAt - ours.claims.timestamp).toBe(sdkParsed.claims.expiresAt - sdkParsed.claims.timestamp)
  })
})
