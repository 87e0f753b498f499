import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { createSessionToken } from '../billing/session-token.ts'
import type { SubAccount } from '../chain/actions/get-account.ts'
import { authenticate } from './authenticate.ts'
import type { ChainView } from './chain-view.ts'
import { ProviderError } from './provider-error.ts'

const user = privateKeyToAccount(`0x${'11'.repeat(32)}`)
const provider = privateKeyToAccount(`0x${'22'.repeat(32)}`).address

/** A chain view over one account whose generation and revocations the test moves (a double: a unit test). */
function chainOf(account: Pick<SubAccount, 'generation' | 'revokedBitmap'>): ChainView {
  // Held as cached: the account is read without waiting, as for a user seen in the last seconds.
  return {
    provider,
    accountNow: () => ({ account: account as SubAccount }),
    account: async () => account as SubAccount,
  } as unknown as ChainView
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(err).toBeInstanceOf(ProviderError)
  return (err as ProviderError).code
}

describe('authenticate, with a token seen before', () => {
  it('still checks expiry, generation and revocation on every call', async () => {
    const account = { generation: 0n, revokedBitmap: 0n }
    const chain = chainOf(account)
    const now = Date.now()
    const { token } = await createSessionToken({
      account: user,
      provider,
      generation: 0,
      tokenId: 3,
      lifetimeMs: 60_000,
    })
    const header = `Bearer ${token}`
    expect(await authenticate(header, { chain, now })).toMatchObject({ user: user.address, tokenId: 3 })
    expect(await authenticate(header, { chain, now })).toMatchObject({ user: user.address, tokenId: 3 })
    expect(await refusal(authenticate(header, { chain, now: now + 120_000 }))).toBe('invalid_token_expired')
    account.revokedBitmap = 1n << 3n
    expect(await refusal(authenticate(header, { chain, now }))).toBe('invalid_token_revoked')
    account.revokedBitmap = 0n
    account.generation = 1n
    expect(await refusal(authenticate(header, { chain, now }))).toBe('invalid_token_generation_mismatch')
  })

  it('refuses a bad signature every time, not only the first', async () => {
    const chain = chainOf({ generation: 0n, revokedBitmap: 0n })
    const { token } = await createSessionToken({ account: user, provider, generation: 0 })
    const raw = Buffer.from(token.slice('app-sk-'.length), 'base64').toString()
    const cut = raw.lastIndexOf('|')
    const sig = raw.slice(cut + 1)
    const tampered = `${raw.slice(0, cut)}|${sig.slice(0, 10)}${sig[10] === 'a' ? 'b' : 'a'}${sig.slice(11)}`
    const header = `Bearer app-sk-${Buffer.from(tampered).toString('base64')}`
    for (let i = 0; i < 2; i++)
      expect(await refusal(authenticate(header, { chain }))).toBe('invalid_token_bad_signature')
    expect(await authenticate(`Bearer ${token}`, { chain })).toMatchObject({ user: user.address })
  })
})
