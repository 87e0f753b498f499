import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import { SqliteUsageStore } from './usage-store.ts'

const USER = '0x00000000000000000000000000000000000000Aa' as Address

const usage = (fee: bigint) => ({
  user: USER,
  createdAt: Date.now(),
  endpoint: 'chat/completions',
  model: 'm',
  inputCount: 1n,
  outputCount: 1n,
  inputFee: 0n,
  outputFee: fee,
  fee,
})

describe('SqliteUsageStore.unrecord', () => {
  it("takes back an undelivered call's fee, but never one a settlement has claimed", () => {
    const store = new SqliteUsageStore(':memory:')
    store.recordDelivery({ resKey: 'a', usage: usage(5n) })
    store.recordDelivery({ resKey: 'b', usage: usage(7n) })
    expect(store.unsettledFee(USER)).toBe(12n)
    expect(store.unrecord('a')).toBe(true)
    expect(store.unsettledFee(USER)).toBe(7n)
    expect(store.unrecord('a')).toBe(false)
    store.beginSettlement({ user: USER, nonce: 1n, totalFee: 7n, requestsHash: '0x00', resKeys: ['b'] })
    expect(store.unrecord('b')).toBe(false)
    expect(store.unsettledFee(USER)).toBe(7n)
    store.close()
  })
})
