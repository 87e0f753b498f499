import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { format0G, parse0G } from '../chain/units.ts'
import { ApiKeyStore } from '../gateway/http/api-keys.ts'
import { periodStart, RESERVATION_TTL_MS, SqliteBudgets } from './budgets.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function storeAt(now: () => number) {
  const dir = mkdtempSync(join(tmpdir(), 'zg-budgets-'))
  dirs.push(dir)
  return new ApiKeyStore(join(dir, 'gateway.sqlite'), { now })
}

describe('0G amounts', () => {
  it('parses and formats exactly', () => {
    expect(parse0G('1')).toBe(10n ** 18n)
    expect(parse0G('0.000000000000000001')).toBe(1n)
    expect(parse0G('12.5')).toBe(12_500_000_000_000_000_000n)
    expect(format0G(12_500_000_000_000_000_000n)).toBe('12.5')
    expect(format0G(1n)).toBe('0.000000000000000001')
    expect(() => parse0G('-1')).toThrow()
    expect(() => parse0G('1e3')).toThrow()
  })
})

describe('periodStart (UTC)', () => {
  const t = Date.UTC(2026, 11, 4, 19, 30) // a Friday
  it('daily, weekly (Monday), monthly', () => {
    expect(periodStart('daily', t)).toBe(Date.UTC(2026, 11, 4))
    expect(periodStart('weekly', t)).toBe(Date.UTC(2026, 10, 30))
    expect(periodStart('monthly', t)).toBe(Date.UTC(2026, 11, 1))
  })
})

describe('SqliteBudgets', () => {
  it('never reserves past the budget, even for many at once, and trues up to the actual fee', () => {
    const keys = storeAt(Date.now)
    const { id } = keys.create('k', { budget: 1000n })
    const held = []
    for (let i = 0; i < 50; i++) {
      const r = keys.budgets.reserve(id, 300n)
      if (!('refused' in r)) held.push(r)
    }
    expect(held).toHaveLength(3)
    const refused = keys.budgets.reserve(id, 300n)
    expect(refused).toEqual({ refused: true, remaining: 100n, budget: 1000n })
    keys.budgets.settle(held[0]!, 120n) // true-up: 180 back
    keys.budgets.settle(held[1]!, 0n) // a failed call costs nothing
    expect(keys.budgets.state(id)).toMatchObject({ spent: 120n, reserved: 300n })
    expect('refused' in keys.budgets.reserve(id, 580n)).toBe(false)
    expect('refused' in keys.budgets.reserve(id, 1n)).toBe(true)
    keys.close()
  })

  it('is one budget across two stores sharing the file (another process)', () => {
    const keys = storeAt(Date.now)
    const { id } = keys.create('k', { budget: 500n })
    // A second connection, as another gateway process would have.
    const db = new DatabaseSync(join(dirs[0]!, 'gateway.sqlite'))
    const other = new SqliteBudgets(db)
    expect('refused' in keys.budgets.reserve(id, 300n)).toBe(false)
    expect(other.reserve(id, 300n)).toMatchObject({ refused: true, remaining: 200n })
    db.close()
    keys.close()
  })

  it('stops counting a reservation its process never settled (a crash) after RESERVATION_TTL_MS', () => {
    let now = 1_000_000
    const keys = storeAt(() => now)
    const { id } = keys.create('k', { budget: 100n })
    expect('refused' in keys.budgets.reserve(id, 100n)).toBe(false) // never settled
    expect('refused' in keys.budgets.reserve(id, 1n)).toBe(true)
    now += RESERVATION_TTL_MS + 1
    expect(keys.budgets.state(id)).toMatchObject({ reserved: 0n })
    expect('refused' in keys.budgets.reserve(id, 100n)).toBe(false)
    keys.close()
  })

  it('resets the spend at the period boundary, keeping reservations in flight', () => {
    let now = Date.UTC(2026, 11, 4, 23, 59)
    const keys = storeAt(() => now)
    const { id } = keys.create('k', { budget: 100n, budgetPeriod: 'daily' })
    const a = keys.budgets.reserve(id, 60n)
    if ('refused' in a) throw new Error('refused')
    keys.budgets.settle(a, 60n)
    const b = keys.budgets.reserve(id, 30n)
    if ('refused' in b) throw new Error('refused')
    expect('refused' in keys.budgets.reserve(id, 20n)).toBe(true)
    now = Date.UTC(2026, 11, 5, 0, 1)
    expect(keys.budgets.state(id)).toMatchObject({ spent: 0n, reserved: 30n })
    expect('refused' in keys.budgets.reserve(id, 70n)).toBe(false)
    keys.budgets.settle(b, 25n)
    expect(keys.budgets.state(id)).toMatchObject({ spent: 25n, reserved: 70n })
    keys.close()
  })
})
