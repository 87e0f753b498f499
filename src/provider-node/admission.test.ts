import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import type { SubAccount } from '../chain/actions/get-account.ts'
import type { Service } from '../chain/actions/get-service.ts'
import { Admission } from './admission.ts'
import type { AccountState, ChainView } from './chain-view.ts'
import { ProviderError } from './provider-error.ts'
import { SqliteUsageStore } from './usage-store.ts'

const USER = '0x00000000000000000000000000000000000000aa' as Address
const PROVIDER = '0x00000000000000000000000000000000000000bb' as Address
const E = 10n ** 18n

const service = (over: Partial<Service> = {}) => ({ teeSignerAcknowledged: true, ...over }) as Service
const account = (balance: bigint, over: Partial<SubAccount> = {}) =>
  ({ balance, pendingRefund: 0n, acknowledged: true, ...over }) as SubAccount

/**
 * A chain view in memory (a unit test's double): `cached` is what it holds now, `onChain` what a read returns; it
 * counts reads, and those asked to bypass the cache (refreshes).
 */
function view(state: {
  cachedService?: { service: Service | undefined }
  onChainService?: Service
  cached?: { account: SubAccount | undefined; stale?: boolean; readAt?: number }
  onChain: SubAccount[]
}) {
  const calls = { reads: 0, refreshes: 0 }
  const chain = {
    provider: PROVIDER,
    serviceNow: () => state.cachedService,
    service: async () => state.onChainService,
    accountNow: (): AccountState | undefined => state.cached && { readAt: 0, stale: false, ...state.cached },
    account: async (_user: Address, opts: { refresh?: boolean } = {}): Promise<AccountState> => {
      calls.reads++
      if (opts.refresh) calls.refreshes++
      return { account: state.onChain[Math.min(calls.reads, state.onChain.length) - 1], readAt: 1, stale: false }
    },
  } as unknown as ChainView
  return { chain, calls }
}

const admission = (chain: ChainView) =>
  new Admission({ chain, store: new SqliteUsageStore(':memory:'), reserve: 1n * E })

const code = (fn: () => unknown) => {
  try {
    fn()
  } catch (err) {
    return (err as ProviderError).code
  }
  return 'none'
}

describe('Admission', () => {
  it('hands out a fresh service at once, and refuses a missing or unacknowledged one with a 503', async () => {
    expect(admission(view({ cachedService: { service: service() }, onChain: [] }).chain).service()).not.toBeInstanceOf(
      Promise,
    )
    expect(code(() => admission(view({ cachedService: { service: undefined }, onChain: [] }).chain).service())).toBe(
      'service_not_registered',
    )
    const unacknowledged = { service: service({ teeSignerAcknowledged: false }) }
    expect(code(() => admission(view({ cachedService: unacknowledged, onChain: [] }).chain).service())).toBe(
      'signer_not_acknowledged',
    )
    // Not read yet: from the chain, with the same refusals.
    const unread = admission(view({ onChain: [] }).chain).service()
    expect(unread).toBeInstanceOf(Promise)
    await expect(unread).rejects.toBeInstanceOf(ProviderError)
  })

  it('admits a cached account that covers the call without waiting, and holds the estimate until released', async () => {
    const { chain, calls } = view({ cached: { account: account(3n * E) }, onChain: [account(3n * E)] })
    const a = admission(chain)
    const release = a.admit(USER, 1n * E)
    expect(typeof release).toBe('function')
    // 3 available, 1 reserve, 1 held: a second call of 1.5 no longer fits, and the chain is asked once again.
    const second = a.admit(USER, (3n * E) / 2n)
    expect(second).toBeInstanceOf(Promise)
    await expect(second).rejects.toMatchObject({ code: 'insufficient_balance' })
    expect(calls).toEqual({ reads: 1, refreshes: 1 })
    ;(release as () => void)()
    // Released: the same call fits (read afresh).
    const third = await a.admit(USER, (3n * E) / 2n)
    expect(typeof third).toBe('function')
  })

  it('re-reads a short account once: a user who just topped up is admitted', async () => {
    const { chain, calls } = view({ cached: { account: account(1n * E) }, onChain: [account(5n * E)] })
    const release = await admission(chain).admit(USER, 1n * E)
    expect(typeof release).toBe('function')
    expect(calls).toEqual({ reads: 1, refreshes: 1 })
  })

  it('reads an account not cached, then once more if it is short', async () => {
    const { chain, calls } = view({ onChain: [account(1n * E), account(1n * E)] })
    await expect(admission(chain).admit(USER, 1n * E)).rejects.toMatchObject({ code: 'insufficient_balance' })
    expect(calls).toEqual({ reads: 2, refreshes: 1 })
  })

  it('admits on a stale account up to the stale-risk limit per read, then refuses with a 503', () => {
    const stale = { account: account(100n * E), stale: true, readAt: 1 }
    const { chain } = view({ cached: stale, onChain: [] })
    const a = new Admission({ chain, store: new SqliteUsageStore(':memory:'), reserve: 1n * E, staleRiskLimit: 3n * E })
    for (let i = 0; i < 3; i++) (a.admit(USER, 1n * E) as () => void)()
    // Released or not, what was admitted on stale data counts: the limit bounds what the node may lose.
    expect(code(() => a.admit(USER, 1n))).toBe('chain_unavailable')
    // A newer read (stale or not) starts the count again.
    stale.readAt = 2
    expect(typeof a.admit(USER, 3n * E)).toBe('function')
  })

  it('refuses a user without a sub-account, or one that did not acknowledge the provider, at once', () => {
    expect(code(() => admission(view({ cached: { account: undefined }, onChain: [] }).chain).admit(USER, 1n))).toBe(
      'account_not_found',
    )
    const unacknowledged = { account: account(5n * E, { acknowledged: false }) }
    expect(code(() => admission(view({ cached: unacknowledged, onChain: [] }).chain).admit(USER, 1n))).toBe(
      'account_not_acknowledged',
    )
  })
})
