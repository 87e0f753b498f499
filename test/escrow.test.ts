import { parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EscrowManager } from '../src/billing/escrow.ts'
import { parseSessionToken } from '../src/billing/session-token.ts'
import { SessionTokenCache } from '../src/billing/session-token-cache.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { anvilAccount } from '../src/devnet/anvil.ts'
import { type Marketplace, startMarketplace } from './support/marketplace.ts'

let m: Marketplace

beforeAll(async () => {
  m = await startMarketplace()
})
afterAll(async () => {
  await m?.stop()
})

describe('escrow: funded only for verified delivery', () => {
  it('opens a sub-account once with the initial deposit, and refills it with exactly the verified fees', async () => {
    const wallet = m.clientsOf(8)
    await (await import('../src/chain/actions/add-ledger.ts')).addLedger(wallet, { amount: parseEther('20') })
    const provider = m.provider.walletClient.account.address
    const user = wallet.walletClient.account.address
    const escrow = new EscrowManager({ clients: wallet, initialDeposit: parseEther('2'), minTopUp: parseEther('0.5') })

    expect(escrow.isOpen(provider)).toBe(false)
    const opening = Promise.all([escrow.ensureOpen(provider), escrow.ensureOpen(provider)])
    // Known open only once the opening succeeded: a call meanwhile waits for it.
    expect(escrow.isOpen(provider)).toBe(false)
    await opening
    expect(escrow.isOpen(provider)).toBe(true)
    expect(escrow.isOpen(provider.toLowerCase() as typeof provider)).toBe(true)
    expect((await getAccount(wallet, { user, provider }))?.balance).toBe(parseEther('2'))

    // Below the threshold nothing moves; verified credit accumulates.
    escrow.creditVerified(provider, parseEther('0.3'))
    expect(escrow.credit(provider)).toBe(parseEther('0.3'))
    expect((await getAccount(wallet, { user, provider }))?.balance).toBe(parseEther('2'))

    // Crossing it refunds all the verified credit into escrow in one transfer.
    escrow.creditVerified(provider, parseEther('0.25'))
    await escrow.topUp(provider)
    expect((await getAccount(wallet, { user, provider }))?.balance).toBe(parseEther('2.55'))
    expect(escrow.credit(provider)).toBe(0n)

    // Unverified work is never credited: nothing to refund.
    expect(await escrow.topUp(provider)).toBe(0n)
  })

  it('a sub-account that could not be opened is not taken for open, and the next call tries again', async () => {
    // A wallet without a ledger: the transfer into a sub-account fails.
    const wallet = m.clientsOf(9)
    const provider = m.provider.walletClient.account.address
    const escrow = new EscrowManager({ clients: wallet, initialDeposit: parseEther('1') })
    await expect(escrow.ensureOpen(provider)).rejects.toThrow()
    expect(escrow.isOpen(provider)).toBe(false)
    await (await import('../src/chain/actions/add-ledger.ts')).addLedger(wallet, { amount: parseEther('5') })
    await escrow.ensureOpen(provider)
    expect(escrow.isOpen(provider)).toBe(true)
  })
})

describe("the gateway wallet's session tokens", () => {
  it('are at hand synchronously once built, until invalidated', async () => {
    const provider = m.provider.walletClient.account.address
    const tokens = new SessionTokenCache({ clients: m.clientsOf(8), account: anvilAccount(8) })
    expect(tokens.cachedAuthorization(provider)).toBeUndefined()
    const authorization = await tokens.authorization(provider)
    expect(authorization).toMatch(/^Bearer app-sk-/)
    const { claims } = parseSessionToken(authorization)
    expect(claims.provider.toLowerCase()).toBe(provider.toLowerCase())
    expect(claims.address.toLowerCase()).toBe(anvilAccount(8).address.toLowerCase())
    // The same header, without a turn of the event loop, for the provider however its address is cased.
    expect(tokens.cachedAuthorization(provider)).toBe(authorization)
    expect(tokens.cachedAuthorization(provider.toLowerCase() as typeof provider)).toBe(authorization)
    tokens.invalidate(provider)
    expect(tokens.cachedAuthorization(provider)).toBeUndefined()
    const renewed = await tokens.authorization(provider)
    expect(renewed).not.toBe(authorization)
  })

  it('are not offered when due for renewal: the next call builds a fresh one', async () => {
    const provider = m.provider.walletClient.account.address
    // Tokens of 60 s, renewed when under 2 min are left: every token is already due.
    const tokens = new SessionTokenCache({
      clients: m.clientsOf(8),
      account: anvilAccount(8),
      lifetimeMs: 60_000,
      refreshBeforeMs: 120_000,
    })
    const first = await tokens.authorization(provider)
    expect(tokens.cachedAuthorization(provider)).toBeUndefined()
    expect(await tokens.authorization(provider)).not.toBe(first)
  })
})
