import { describe, expect, it } from 'vitest'
import { UsageLedger } from './usage-ledger.ts'
import { parseBy, parseSince, usageReport } from './usage-report.ts'

describe('usage report options', () => {
  it('reads --since as a window or a date', () => {
    expect(parseSince('30m', 1_000_000_000)).toBe(1_000_000_000 - 1_800_000)
    expect(parseSince('2026-12-01')).toBe(Date.UTC(2026, 11, 1))
    expect(() => parseSince('yesterday')).toThrow(/since takes/)
  })

  it('reads --by as dimensions or all', () => {
    expect(parseBy('key,day')).toEqual(['key', 'day'])
    expect(parseBy('all')).toEqual(['key', 'model', 'provider', 'day'])
    expect(() => parseBy('colour')).toThrow(/not colour/)
  })

  it('totals the rows and checksums providers', async () => {
    const ledger = new UsageLedger(':memory:')
    ledger.record({
      requestId: 'r1',
      createdAt: Date.UTC(2026, 11, 1),
      apiKeyId: 'k1',
      provider: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
      model: 'dev/chat',
      endpoint: 'chat/completions',
      stream: false,
      status: 200,
      inputUnits: 1n,
      outputUnits: 1n,
      fee: 3n,
      resKey: null,
      latencyMs: 1,
      deliveredBytes: 1,
      verification: 'verified',
      verificationLevel: null,
      verificationDetail: null,
    })
    const report = await usageReport(ledger, { by: ['provider', 'key'] })
    expect(report).toMatchObject({ by: ['key', 'provider'], calls: 1, verified: 1, total: 3n, verifiedTotal: 3n })
    expect(report.rows[0]).toMatchObject({ key: 'k1', provider: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' })
    ledger.close()
  })
})
