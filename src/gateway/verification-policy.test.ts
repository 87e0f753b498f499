import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import type { CatalogEntry } from '../providers/catalog.ts'
import { GatewayError } from './http/openai-error.ts'
import { meetRequirement, requirementOf, type SignerAttester } from './verification-policy.ts'

const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address

function entry(n: number, over: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    provider: address(n),
    serviceType: 'chatbot',
    url: `http://127.0.0.1:${9000 + n}`,
    model: 'm',
    models: ['m'],
    inputPrice: 10n,
    outputPrice: 10n,
    verifiability: 'TeeML',
    teeSignerAddress: address(100 + n),
    teeSignerAcknowledged: true,
    additionalInfo: {} as CatalogEntry['additionalInfo'],
    updatedAt: 0n,
    healthy: true,
    ...over,
  }
}

/** Signer n+100 attests at the level given; counts the attestations run. */
function attester(levels: Record<number, 'L2' | 'L3' | null>) {
  const runs: Address[] = []
  const cache = new Map<string, 'L2' | 'L3' | null>()
  const a: SignerAttester & { runs: Address[] } = {
    runs,
    close: async () => {},
    known: (_provider, signer) => (cache.has(signer) ? { level: cache.get(signer)!, recordHash: '0x00' } : undefined),
    async attest(e) {
      runs.push(e.provider)
      const level = levels[Number(BigInt(e.provider))] ?? null
      cache.set(e.teeSignerAddress, level)
      return { level, reasons: level ? [] : ['no TDX quote: the provider does not run in a TEE'] }
    },
  }
  return a
}

describe('requirementOf', () => {
  it('takes the stronger of the key and the request, and TEE only from either', () => {
    expect(requirementOf(undefined, {})).toBeUndefined()
    expect(requirementOf({ minVerification: 'L1', teeOnly: false }, { minVerification: 'L2' })).toEqual({
      minLevel: 'L2',
      teeOnly: false,
    })
    expect(requirementOf({ minVerification: 'L3', teeOnly: false }, { minVerification: 'L0' })).toEqual({
      minLevel: 'L3',
      teeOnly: false,
    })
    expect(requirementOf(undefined, { trustMode: 'private' })).toEqual({ minLevel: 'none', teeOnly: true })
    expect(requirementOf(undefined, { trustMode: 'Verified' })).toEqual({ minLevel: 'L1', teeOnly: false })
    expect(requirementOf({ minVerification: 'none', teeOnly: true }, {})).toEqual({ minLevel: 'none', teeOnly: true })
  })

  it('refuses a header it cannot read with a 400 naming it', () => {
    for (const [headers, param] of [
      [{ minVerification: 'L4' }, 'x-zg-min-verification'],
      [{ minVerification: 'high' }, 'x-zg-min-verification'],
      [{ trustMode: 'paranoid' }, 'x-0g-provider-trust-mode'],
    ] as const) {
      const err = (() => {
        try {
          requirementOf(undefined, headers)
        } catch (e) {
          return e
        }
      })() as GatewayError
      expect(err).toBeInstanceOf(GatewayError)
      expect(err).toMatchObject({ status: 400, code: 'invalid_header', param })
    }
  })
})

describe('meetRequirement', () => {
  const tee = entry(1)
  const separated = entry(2, { additionalInfo: { TargetSeparated: true } as CatalogEntry['additionalInfo'] })
  const standard = entry(3, { verifiability: 'standard' })
  const unacknowledged = entry(4, { teeSignerAcknowledged: false })
  const all = [tee, separated, standard, unacknowledged]

  it('keeps the order and drops what falls short', async () => {
    expect(await meetRequirement('m', all, { minLevel: 'L0', teeOnly: false }, undefined)).toEqual([
      tee,
      separated,
      unacknowledged,
    ])
    expect(await meetRequirement('m', all, { minLevel: 'L1', teeOnly: false }, undefined)).toEqual([tee, separated])
    expect(await meetRequirement('m', all, { minLevel: 'none', teeOnly: true }, undefined)).toEqual([
      tee,
      unacknowledged,
    ])
  })

  it('attests signers an L2 requirement needs, once each, and uses the cache after', async () => {
    const a = attester({ 1: 'L3', 2: null })
    const l2 = { minLevel: 'L2', teeOnly: false } as const
    expect(await meetRequirement('m', all, l2, a)).toEqual([tee])
    expect(a.runs).toEqual([tee.provider, separated.provider])
    expect(await meetRequirement('m', all, { minLevel: 'L3', teeOnly: false }, a)).toEqual([tee])
    expect(a.runs).toHaveLength(2)
  })

  it('none left: a 503 saying what each provider reached and why', async () => {
    const a = attester({})
    const err = (await meetRequirement('m', [tee, standard], { minLevel: 'L2', teeOnly: true }, a).catch(
      (e) => e,
    )) as GatewayError
    expect(err).toMatchObject({ status: 503, code: 'no_provider_available' })
    expect(err.message).toContain('No provider of m offers verification L2 and a model run in a TEE')
    expect(err.message).toContain(`${tee.provider} reached L1 (no TDX quote: the provider does not run in a TEE)`)
    expect(err.message).toContain(`${standard.provider} does not run its model in a TEE (standard)`)
    const none = (await meetRequirement('m', [tee], { minLevel: 'L2', teeOnly: false }, undefined).catch(
      (e) => e,
    )) as GatewayError
    expect(none.message).toContain('this gateway does not attest signers')
  })
})
