import { parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EscrowManager } from '../src/billing/escrow.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
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

    await Promise.all([escrow.ensureOpen(provider), escrow.ensureOpen(provider)])
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
})
