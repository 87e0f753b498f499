import { describe, expect, it } from 'vitest'
import { parseAdditionalInfo } from './additional-info.ts'

describe('parseAdditionalInfo', () => {
  it('types every key the 0G broker writes', () => {
    const raw = JSON.stringify({
      VerifierURL: 'https://verifier.example/',
      TEEVerifier: 'dstack',
      TargetSeparated: true,
      TargetTeeAddress: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
      ImageName: 'ghcr.io/0gfoundation/broker',
      ImageDigest: 'sha256:abc',
      ProviderType: 'centralized',
      ProviderIdentity: 'openai',
      MultiModel: true,
      priceDenomination: 'USD',
      tieredPricing: {
        tiers: [
          { maxInputTokens: 128000, inputMultiplier: 1, outputMultiplier: 1 },
          { maxInputTokens: 0, inputMultiplier: 3, inputMultiplierDenominator: 2, outputMultiplier: 2 },
        ],
      },
      cacheTokenBilling: { divisor: 10 },
    })
    expect(parseAdditionalInfo(raw)).toEqual({
      raw,
      valid: true,
      VerifierURL: 'https://verifier.example/',
      TEEVerifier: 'dstack',
      TargetSeparated: true,
      // checksummed
      TargetTeeAddress: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
      ImageName: 'ghcr.io/0gfoundation/broker',
      ImageDigest: 'sha256:abc',
      ProviderType: 'centralized',
      ProviderIdentity: 'openai',
      MultiModel: true,
      priceDenomination: 'USD',
      tieredPricing: {
        tiers: [
          { maxInputTokens: 128000, inputMultiplier: 1, outputMultiplier: 1 },
          { maxInputTokens: 0, inputMultiplier: 3, inputMultiplierDenominator: 2, outputMultiplier: 2 },
        ],
      },
      cacheTokenBilling: { divisor: 10 },
      extra: {},
    })
  })

  it('keeps unknown keys, and known keys of the wrong type, in extra', () => {
    const info = parseAdditionalInfo(
      JSON.stringify({
        TEEVerifier: 'cryptopilot',
        NewKey2027: { nested: [1, 2] },
        TargetSeparated: 'yes',
        TargetTeeAddress: 'not-an-address',
        cacheTokenBilling: { divisor: 0 },
        tieredPricing: { tiers: [{ maxInputTokens: 1, inputMultiplier: 'x', outputMultiplier: 1 }] },
      }),
    )
    expect(info.valid).toBe(true)
    expect(info.TEEVerifier).toBe('cryptopilot')
    expect(info.TargetSeparated).toBeUndefined()
    expect(info.TargetTeeAddress).toBeUndefined()
    expect(info.cacheTokenBilling).toBeUndefined()
    expect(info.tieredPricing).toBeUndefined()
    expect(info.extra).toEqual({
      NewKey2027: { nested: [1, 2] },
      TargetSeparated: 'yes',
      TargetTeeAddress: 'not-an-address',
      cacheTokenBilling: { divisor: 0 },
      tieredPricing: { tiers: [{ maxInputTokens: 1, inputMultiplier: 'x', outputMultiplier: 1 }] },
    })
  })

  it('reads "true"/"false" strings as booleans, and a list of model ids as MultiModel', () => {
    expect(parseAdditionalInfo('{"TargetSeparated":"false","MultiModel":"true"}')).toMatchObject({
      TargetSeparated: false,
      MultiModel: true,
    })
    expect(parseAdditionalInfo('{"MultiModel":["a/b","c"]}').MultiModel).toEqual(['a/b', 'c'])
    const mixed = parseAdditionalInfo('{"MultiModel":["a",1]}')
    expect(mixed.MultiModel).toBeUndefined()
    expect(mixed.extra).toEqual({ MultiModel: ['a', 1] })
  })

  it('does not throw on invalid JSON, or JSON that is not an object', () => {
    for (const raw of ['', 'not json', '{"a":', '[]', '"s"', '42', 'null', 'true']) {
      expect(parseAdditionalInfo(raw), raw).toEqual({ raw, valid: false, extra: {} })
    }
  })

  it('treats a "__proto__" key as data', () => {
    const info = parseAdditionalInfo('{"__proto__":{"polluted":true},"ProviderType":"standard"}')
    expect(info.ProviderType).toBe('standard')
    expect(Object.getPrototypeOf(info.extra)).toBe(Object.prototype)
    expect(Object.hasOwn(info.extra, '__proto__')).toBe(true)
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined()
  })

  it('accepts the empty object the devnet registers', () => {
    expect(parseAdditionalInfo('{}')).toEqual({ raw: '{}', valid: true, extra: {} })
  })
})
