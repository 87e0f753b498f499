import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { type CallRecord, UsageLedger } from './usage-ledger.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'zg-ledger-'))
  dirs.push(dir)
  return join(dir, 'usage.sqlite')
}

const call = (requestId: string, fee: bigint): CallRecord => ({
  requestId,
  createdAt: Date.now(),
  apiKeyId: 'k1',
  provider: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
  model: 'dev/chat',
  endpoint: 'chat/completions',
  stream: false,
  status: 200,
  inputUnits: 10n,
  outputUnits: 20n,
  deliveredBytes: 512,
  fee,
  resKey: `key-${requestId}`,
  latencyMs: 3,
  verification: 'pending',
  verificationLevel: null,
  verificationDetail: null,
})

/** Rows as another process sees them: only what was committed. */
function committed(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM calls').get() as { n: number }).n
  } finally {
    db.close()
  }
}

describe('UsageLedger', () => {
  it('group-commits writes, and reads in this process see them at once', async () => {
    const path = tempPath()
    const ledger = new UsageLedger(path)
    for (let i = 0; i < 5; i++) ledger.record(call(`r${i}`, BigInt(i) * 10n ** 15n))
    ledger.setVerification('r1', 'verified', 'L1', 'ok')
    expect(committed(path)).toBe(0)
    // This process's reads commit first, so a receipt is visible the moment it was written.
    expect(ledger.get('r1')).toMatchObject({ verification: 'verified', verificationLevel: 'L1', fee: 10n ** 15n })
    expect(committed(path)).toBe(5)
    ledger.record(call('r5', 7n))
    expect(committed(path)).toBe(5)
    await new Promise((resolve) => setTimeout(resolve, UsageLedger.GROUP_MS + 20))
    expect(committed(path)).toBe(6)
    ledger.close()
  })

  it('lets a due group wait for the moment it is given (whenIdle), with later writes joining it', async () => {
    const path = tempPath()
    const due: Array<() => void> = []
    const ledger = new UsageLedger(path, { whenIdle: (commit) => due.push(commit) })
    ledger.record(call('w1', 1n))
    await new Promise((resolve) => setTimeout(resolve, UsageLedger.GROUP_MS + 20))
    expect(due).toHaveLength(1)
    expect(committed(path)).toBe(0)
    ledger.record(call('w2', 2n))
    await new Promise((resolve) => setTimeout(resolve, UsageLedger.GROUP_MS + 20))
    // No second group was scheduled: w2 waits with w1.
    expect(due).toHaveLength(1)
    due[0]!()
    expect(committed(path)).toBe(2)
    ledger.close()
  })

  it('opens a ledger written before delivered_bytes existed: the column is added, old rows read 0', () => {
    const path = tempPath()
    const old = new DatabaseSync(path)
    old.exec(`CREATE TABLE calls (request_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, api_key_id TEXT,
      provider TEXT NOT NULL, model TEXT NOT NULL, endpoint TEXT NOT NULL, stream INTEGER NOT NULL,
      status INTEGER NOT NULL, input_units TEXT NOT NULL, output_units TEXT NOT NULL, fee TEXT NOT NULL, res_key TEXT,
      latency_ms INTEGER NOT NULL, verification TEXT NOT NULL, verification_level TEXT, verification_detail TEXT)`)
    old.exec(`INSERT INTO calls VALUES ('req_old', 1, NULL, '0xabc', 'm', 'chat/completions', 0, 200, '1', '2', '3',
      NULL, 5, 'verified', 'L1', 'ok')`)
    old.close()
    const ledger = new UsageLedger(path)
    expect(ledger.get('req_old')).toMatchObject({ fee: 3n, deliveredBytes: 0, verification: 'verified' })
    ledger.record(call('req_new', 7n))
    expect(ledger.get('req_new')).toMatchObject({ fee: 7n, deliveredBytes: 512 })
    ledger.close()
  })

  it('commits a full group at once', () => {
    const path = tempPath()
    const ledger = new UsageLedger(path)
    for (let i = 0; i < UsageLedger.GROUP_MAX; i++) ledger.record(call(`g${i}`, 1n))
    expect(committed(path)).toBe(UsageLedger.GROUP_MAX)
    ledger.close()
  })

  it('commits what is queued on close, and keeps bigint fees exact', () => {
    const path = tempPath()
    const ledger = new UsageLedger(path)
    const big = 123_456_789_012_345_678_901_234_567n
    ledger.record(call('a', big))
    ledger.record(call('b', 1n))
    ledger.close()
    const again = new UsageLedger(path)
    expect(again.get('a')?.fee).toBe(big)
    expect(again.summary()[0]).toMatchObject({ calls: 2, fee: big + 1n, verified: 0 })
    again.close()
  })

  it('drops only the write that fails, reports it, and keeps the rest of its group', async () => {
    const path = tempPath()
    const errors: string[] = []
    const ledger = new UsageLedger(path, { onError: (err) => errors.push(err.message) })
    ledger.record(call('ok', 1n))
    ledger.record({ ...call('bad', 1n), model: null as unknown as string })
    ledger.record(call('also-ok', 2n))
    // The scheduled commit, not a read: nothing may throw out of it.
    await new Promise((resolve) => setTimeout(resolve, UsageLedger.GROUP_MS + 20))
    expect(errors).toEqual([expect.stringMatching(/NOT NULL/)])
    expect(committed(path)).toBe(2)
    expect(ledger.get('bad')).toBeUndefined()
    expect(ledger.get('also-ok')?.fee).toBe(2n)
    ledger.close()
  })
})

describe('spend per key, model, provider and day', () => {
  const DAY = 86_400_000
  const day1 = Date.UTC(2026, 11, 1, 10)
  const at = (c: CallRecord, over: Partial<CallRecord>): CallRecord => ({ ...c, ...over })

  it('groups fees as bigints, with the verified part of each group', () => {
    const ledger = new UsageLedger(tempPath())
    const big = 10n ** 20n + 1n
    ledger.record(at(call('a', big), { createdAt: day1, apiKeyId: 'k1', verification: 'verified' }))
    ledger.record(at(call('b', 5n), { createdAt: day1 + 1000, apiKeyId: 'k1', verification: 'pending' }))
    ledger.record(at(call('c', 7n), { createdAt: day1 + DAY, apiKeyId: 'k2', verification: 'disputed' }))
    ledger.record(at(call('d', 1n), { createdAt: day1 + DAY, apiKeyId: null, model: 'dev/other' }))
    expect(ledger.spend({ by: ['key', 'day'] })).toEqual([
      { key: null, day: '2026-12-02', calls: 1, fee: 1n, verified: 0, verifiedFee: 0n, failed: 0 },
      { key: 'k1', day: '2026-12-01', calls: 2, fee: big + 5n, verified: 1, verifiedFee: big, failed: 0 },
      { key: 'k2', day: '2026-12-02', calls: 1, fee: 7n, verified: 0, verifiedFee: 0n, failed: 1 },
    ])
    expect(ledger.spend({ by: ['model'], since: day1 + DAY })).toEqual([
      { model: 'dev/chat', calls: 1, fee: 7n, verified: 0, verifiedFee: 0n, failed: 1 },
      { model: 'dev/other', calls: 1, fee: 1n, verified: 0, verifiedFee: 0n, failed: 0 },
    ])
    expect(ledger.spend()).toEqual([{ calls: 4, fee: big + 13n, verified: 1, verifiedFee: big, failed: 1 }])
    ledger.close()
  })

  it('commits a durable record before it resolves, one commit for the calls of one turn', async () => {
    const path = tempPath()
    const ledger = new UsageLedger(path)
    await Promise.all([ledger.recordDurably(call('x', 1n)), ledger.recordDurably(call('y', 2n))])
    // Another connection sees both: they are committed, not only queued in this process.
    const other = new DatabaseSync(path)
    expect(other.prepare('SELECT COUNT(*) AS n FROM calls').get()).toEqual({ n: 2 })
    other.close()
    ledger.close()
  })
})
