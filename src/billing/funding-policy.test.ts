import { parseEther } from 'viem'
import { describe, expect, it } from 'vitest'
import { disputesExceeded, MIN_LOCKED_BALANCE, planTopUp, SpendWindow } from './funding-policy.ts'

const e = parseEther

describe('planTopUp: target = unsettled + expected + reserve, top-up only verified', () => {
  const base = { balance: e('2'), pendingRefund: 0n, unsettled: 0n, expected: 0n, reserve: MIN_LOCKED_BALANCE }

  it('the target is what the provider admission rule asks for, headroom what it counts', () => {
    const plan = planTopUp({
      ...base,
      balance: e('3'),
      pendingRefund: e('0.5'),
      unsettled: e('1.2'),
      expected: e('0.3'),
      credit: 0n,
    })
    expect(plan.target).toBe(e('2.5'))
    expect(plan.headroom).toBe(e('2.5'))
    expect(plan.deficit).toBe(0n)
    expect(plan.amount).toBe(0n)
  })

  it('moves the deficit when verified credit covers it, and no more', () => {
    const plan = planTopUp({ ...base, unsettled: e('1.5'), expected: e('0.2'), credit: e('5') })
    expect(plan.target).toBe(e('2.7'))
    expect(plan.deficit).toBe(e('0.7'))
    expect(plan.amount).toBe(e('0.7'))
  })

  it('never moves more than the verified credit, however short the account is', () => {
    const plan = planTopUp({ ...base, balance: e('1'), unsettled: e('3'), expected: e('1'), credit: e('0.4') })
    expect(plan.deficit).toBe(e('4'))
    expect(plan.amount).toBe(e('0.4'))
  })

  it('moves nothing without verified credit (unverified work is never funded in advance)', () => {
    expect(planTopUp({ ...base, unsettled: e('10'), credit: 0n }).amount).toBe(0n)
  })

  it('counts pending refunds out of the headroom, as the provider does', () => {
    const plan = planTopUp({ ...base, balance: e('2'), pendingRefund: e('2'), credit: e('3') })
    expect(plan.headroom).toBe(0n)
    expect(plan.amount).toBe(MIN_LOCKED_BALANCE)
  })

  it('a configurable reserve (a test network may keep a smaller one)', () => {
    const plan = planTopUp({ ...base, balance: 0n, reserve: e('0.005'), credit: e('1') })
    expect(plan.target).toBe(e('0.005'))
    expect(plan.amount).toBe(e('0.005'))
  })
})

describe('SpendWindow: recent spend as the expected cost of the next requests', () => {
  it('sums the fees of the last window, on a fake clock', () => {
    let now = 1_000_000
    const w = new SpendWindow(60_000, () => now)
    w.add(e('0.1'))
    now += 30_000
    w.add(e('0.2'))
    w.add(0n)
    expect(w.total()).toBe(e('0.3'))
    now += 30_000
    // The first fee is exactly a window old: out.
    expect(w.total()).toBe(e('0.2'))
    now += 29_999
    expect(w.total()).toBe(e('0.2'))
    now += 1
    expect(w.total()).toBe(0n)
  })
})

describe('disputesExceeded', () => {
  it('stops after a count of disputed responses (3 by default)', () => {
    expect(disputesExceeded(2, 2, {})).toBe(false)
    expect(disputesExceeded(3, 100, {})).toBe(true)
    expect(disputesExceeded(1, 1, { count: 1 })).toBe(true)
  })

  it('or after a share of the checked ones, once enough were checked', () => {
    const t = { count: 100, share: 0.2, minChecked: 10 }
    expect(disputesExceeded(2, 5, t)).toBe(false)
    expect(disputesExceeded(1, 10, t)).toBe(false)
    expect(disputesExceeded(2, 10, t)).toBe(true)
  })
})
