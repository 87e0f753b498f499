import { getAddress, parseEther } from 'viem'
import { describe, expect, it } from 'vitest'
import type { ZgClients } from '../chain/clients.ts'
import { EscrowManager } from './escrow.ts'

const e = parseEther
const A = getAddress('0x00000000000000000000000000000000000000a1')
const B = getAddress('0x00000000000000000000000000000000000000b2')

/** The policy's bookkeeping alone: no sub-account is opened, so nothing here touches a chain. */
function policy(over: Partial<ConstructorParameters<typeof EscrowManager>[0]> = {}) {
  let now = 1_000_000
  const flags: Array<[string, boolean]> = []
  const escrow = new EscrowManager({
    clients: {} as ZgClients,
    intervalMs: 0,
    spendWindowMs: 60_000,
    minTopUp: e('1000'),
    now: () => now,
    onFlag: (provider, flagged) => flags.push([provider, flagged]),
    ...over,
  })
  return { escrow, flags, advance: (ms: number) => (now += ms) }
}

describe('EscrowManager: the funding policy’s bookkeeping', () => {
  it('credits only verified fees, and counts every checked fee toward expected spend and unsettled fees', () => {
    const { escrow, advance } = policy()
    escrow.onReceipt(A, 'verified', e('0.2'))
    escrow.onReceipt(A, 'unverified', e('0.3'))
    escrow.onReceipt(A, 'disputed', e('0.1'))
    expect(escrow.credit(A)).toBe(e('0.2'))
    const [s] = escrow.status()
    expect(s).toMatchObject({
      unsettled: e('0.6'),
      unsettledSource: 'gateway',
      expected: e('0.6'),
      reserve: e('1'),
      target: e('0.6') + e('0.6') + e('1'),
      verified: e('0.2'),
      checked: 3,
      disputed: 1,
    })
    // A minute later the spend has left the window; what the provider is owed has not.
    advance(60_000)
    expect(escrow.status()[0]).toMatchObject({ expected: 0n, unsettled: e('0.6'), target: e('1.6') })
  })

  it('stops a provider at the dispute threshold: flagged for the router, no target, no credit moved', async () => {
    const { escrow, flags } = policy({ disputes: { count: 2 }, reserve: e('0.005') })
    escrow.onReceipt(A, 'disputed', 0n)
    expect(escrow.isStopped(A)).toBe(false)
    escrow.onReceipt(A, 'verified', e('0.5'))
    escrow.onReceipt(A, 'disputed', 0n)
    expect(escrow.isStopped(A)).toBe(true)
    expect(flags).toEqual([[A, true]])
    expect(escrow.status()[0]).toMatchObject({
      state: 'stopped',
      target: null,
      reason: 'stopped: 2 disputed of 3 checked',
    })
    expect(await escrow.topUp(A)).toBe(0n)
    expect(await escrow.rebalance(A)).toBeUndefined()
    // More disputes do not flag it again.
    escrow.onReceipt(A, 'disputed', 0n)
    expect(flags).toHaveLength(1)
  })

  it('or at a share of its checked responses', () => {
    const { escrow } = policy({ disputes: { count: 100, share: 0.25, minChecked: 4 } })
    for (const status of ['verified', 'verified', 'disputed']) escrow.onReceipt(B, status, 1n)
    expect(escrow.isStopped(B)).toBe(false)
    escrow.onReceipt(B, 'verified', 1n)
    expect(escrow.isStopped(B)).toBe(true)
  })

  it('takes back past dispute counts at start, so a restart keeps a stopped provider stopped', () => {
    const { escrow, flags } = policy()
    escrow.restore([
      { provider: A, verification: 'disputed', createdAt: 1 },
      { provider: A, verification: 'disputed', createdAt: 2 },
      { provider: A, verification: 'pending', createdAt: 3 },
      { provider: A, verification: 'disputed', createdAt: 4 },
      { provider: B, verification: 'verified', createdAt: 5 },
    ])
    expect(flags).toEqual([[A, true]])
    const states = Object.fromEntries(escrow.status().map((s) => [s.provider, s.state]))
    expect(states).toEqual({ [A]: 'stopped', [B]: 'idle' })
    // Past verified fees are not credited again.
    expect(escrow.credit(B)).toBe(0n)
  })

  it('resumes a stopped provider on request: routed again, its past disputes forgiven, also across a restart', () => {
    const { escrow, flags } = policy()
    expect(escrow.resume(A)).toBe(false)
    for (let i = 0; i < 3; i++) escrow.onReceipt(A, 'disputed', 0n)
    expect(escrow.isStopped(A)).toBe(true)
    expect(escrow.resume(A)).toBe(true)
    expect(flags).toEqual([
      [A, true],
      [A, false],
    ])
    expect(escrow.isStopped(A)).toBe(false)
    expect(escrow.status()[0]).toMatchObject({ state: 'idle', disputed: 0, checked: 0 })
    // Two more disputes are under the threshold again.
    escrow.onReceipt(A, 'disputed', 0n)
    escrow.onReceipt(A, 'disputed', 0n)
    expect(escrow.isStopped(A)).toBe(false)

    // After a restart, only the disputes since the resume count.
    const restarted = policy()
    const calls = [1, 2, 3, 10, 11].map((createdAt) => ({ provider: A, verification: 'disputed', createdAt }))
    restarted.escrow.restore(calls, new Map([[A.toLowerCase(), 10]]))
    expect(restarted.escrow.isStopped(A)).toBe(false)
    expect(restarted.escrow.status()[0]).toMatchObject({ disputed: 2, checked: 2 })
  })
})
