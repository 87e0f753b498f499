import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Address } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Reservation } from '../src/billing/budgets.ts'
import { PostgresRateLimiter } from '../src/billing/postgres-rate-limits.ts'
import { PostgresUsageLedger } from '../src/billing/postgres-usage-ledger.ts'
import { type RateCounter, RateLimiter } from '../src/billing/rate-limits.ts'
import { type CallLedger, type CallRecord, UsageLedger } from '../src/billing/usage-ledger.ts'
import { ApiKeyStore, type KeyStore } from '../src/gateway/http/api-keys.ts'
import { PostgresApiKeyStore } from '../src/gateway/http/postgres-api-keys.ts'
import { PostgresResponseStore } from '../src/gateway/responses/postgres-store.ts'
import {
  BrokenChainError,
  type ResponseRecords,
  ResponseStore,
  type StoredResponse,
} from '../src/gateway/responses/store.ts'
import { connectPostgres, type Sql } from '../src/store/postgres/connect.ts'
import { migrate, migrations } from '../src/store/postgres/migrate.ts'
import { testDatabase } from './support/postgres.ts'

/** One store's parts, fresh for each test; `now` is the clock the keys and budgets read. */
type Stores = {
  keys: KeyStore
  ledger: CallLedger
  rates: RateCounter
  responses: ResponseRecords
  now: { ms: number }
}
type Backend = { name: string; open(): Promise<Stores>; close(): Promise<void> }

const DAY = 86_400_000

function sqliteBackend(): Backend {
  const dirs: string[] = []
  const open: Array<{ close(): unknown }> = []
  return {
    name: 'SQLite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'zg-contract-'))
      dirs.push(dir)
      const now = { ms: Date.UTC(2026, 5, 10, 12) }
      const keys = new ApiKeyStore(join(dir, 'gateway.sqlite'), { now: () => now.ms })
      const ledger = new UsageLedger(join(dir, 'usage.sqlite'))
      const responses = new ResponseStore(join(dir, 'responses.sqlite'))
      open.push(keys, ledger, responses)
      return { keys, ledger, rates: new RateLimiter(), responses, now }
    },
    async close() {
      for (const s of open) s.close()
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    },
  }
}

function postgresBackend(): Backend {
  let db: Awaited<ReturnType<typeof testDatabase>> | undefined
  let sql: Sql | undefined
  return {
    name: 'Postgres',
    async open() {
      if (!db) {
        db = await testDatabase()
        sql = connectPostgres(db.url, { max: 20 })
        await migrate(sql)
      }
      // Each test gets empty tables rather than a new database: quicker, and the schema is the migrated one.
      await sql!`TRUNCATE api_keys, key_reservations, rate_windows, calls, provider_resumes, responses CASCADE`
      const now = { ms: Date.UTC(2026, 5, 10, 12) }
      return {
        keys: new PostgresApiKeyStore(sql!, { now: () => now.ms }),
        ledger: new PostgresUsageLedger(sql!),
        rates: new PostgresRateLimiter(sql!),
        responses: new PostgresResponseStore(sql!),
        now,
      }
    },
    async close() {
      await sql?.end({ timeout: 5 })
      await db?.dispose()
    },
  }
}

const call = (over: Partial<CallRecord> = {}): CallRecord => ({
  requestId: `req-${Math.random().toString(36).slice(2)}`,
  createdAt: Date.UTC(2026, 5, 10, 12),
  apiKeyId: 'key_a',
  provider: '0x00000000000000000000000000000000000000AA' as Address,
  model: 'm',
  endpoint: 'chat/completions',
  stream: false,
  status: 200,
  inputUnits: 10n,
  outputUnits: 20n,
  fee: 1_000_000_000_000_000_000_000n,
  resKey: null,
  latencyMs: 12,
  deliveredBytes: 345,
  verification: 'pending',
  verificationLevel: null,
  verificationDetail: null,
  signedReceipt: null,
  ...over,
})

describe.each([sqliteBackend(), postgresBackend()])('the $name store', (backend) => {
  let s: Stores
  beforeAll(async () => {
    s = await backend.open()
  }, 60_000)
  afterAll(() => backend.close())
  const fresh = async () => {
    s = await backend.open()
    return s
  }

  describe('keys', () => {
    it('creates a key it verifies by its secret only, lists it without the secret, and keeps its policy', async () => {
      const { keys } = await fresh()
      const created = await keys.create('team', { budget: 5n, budgetPeriod: 'daily', rpm: 7, allowedModels: ['x'] })
      expect(created.key).toMatch(/^sk-zg-/)
      const identity = await keys.verify(created.key)
      expect(identity?.id).toBe(created.id)
      expect(identity?.policy).toMatchObject({ budget: 5n, budgetPeriod: 'daily', rpm: 7, allowedModels: ['x'] })
      expect(await keys.verify(`${created.key}x`)).toBeUndefined()
      const listed = await keys.list()
      expect(listed.map((k) => k.id)).toEqual([created.id])
      expect(JSON.stringify(listed)).not.toContain(created.key)
      expect(listed[0]).toMatchObject({ name: 'team', budget: '5', spent: '0', reserved: '0', rpm: 7 })
    })

    it('updates, rotates and revokes: the old secret stops at once in the process that changed it', async () => {
      const { keys } = await fresh()
      const created = await keys.create('team')
      expect(await keys.verify(created.key)).toBeDefined()
      expect((await keys.update(created.id, { tpm: 100, metadata: { team: 'a' } }))?.tpm).toBe(100)
      expect((await keys.verify(created.key))?.policy?.tpm).toBe(100)
      const rotated = await keys.rotate(created.id)
      expect(rotated?.id).toBe(created.id)
      expect(await keys.verify(created.key)).toBeUndefined()
      expect((await keys.verify(rotated!.key))?.id).toBe(created.id)
      expect(await keys.revoke(created.id)).toBe(true)
      expect(await keys.revoke(created.id)).toBe(false)
      expect(await keys.verify(rotated!.key)).toBeUndefined()
      expect(await keys.refusal(rotated!.key)).toBe('revoked')
      expect(await keys.rotate(created.id)).toBeUndefined()
      expect((await keys.get(created.id))?.metadata).toEqual({ team: 'a' })
    })

    it('refuses an expired key and says why', async () => {
      const { keys, now } = await fresh()
      const created = await keys.create('short', { expiresAt: now.ms + 1000 })
      expect(await keys.verify(created.key)).toBeDefined()
      now.ms += 2000
      expect(await keys.refusal(created.key)).toBe('expired')
    })
  })

  describe('budgets', () => {
    it('100 concurrent reservations against room for 10: exactly 10 hold, the rest are refused and hold nothing', async () => {
      const { keys } = await fresh()
      const { id } = await keys.create('b', { budget: 100n })
      const results = await Promise.all(Array.from({ length: 100 }, () => keys.budgets.reserve(id, 10n)))
      const held = results.filter((r): r is Reservation => !('refused' in r))
      expect(held).toHaveLength(10)
      expect((await keys.budgets.state(id))?.reserved).toBe(100n)
      for (const r of results.filter((r) => 'refused' in r)) expect(r).toMatchObject({ remaining: 0n, budget: 100n })
      // Settled for less than reserved: the difference is free again.
      await Promise.all(held.map((r) => keys.budgets.settle(r, 3n)))
      expect(await keys.budgets.state(id)).toMatchObject({ spent: 30n, reserved: 0n })
      expect('refused' in (await keys.budgets.reserve(id, 71n))).toBe(true)
      expect('refused' in (await keys.budgets.reserve(id, 70n))).toBe(false)
    })

    it('a daily budget starts over at midnight UTC, with the fee that opened the new day', async () => {
      const { keys, now } = await fresh()
      const { id } = await keys.create('d', { budget: 10n, budgetPeriod: 'daily' })
      const first = await keys.budgets.reserve(id, 8n)
      await keys.budgets.settle(first as Reservation, 8n)
      expect('refused' in (await keys.budgets.reserve(id, 5n))).toBe(true)
      now.ms += DAY
      expect((await keys.budgets.state(id))?.spent).toBe(0n)
      const next = await keys.budgets.reserve(id, 5n)
      expect('refused' in next).toBe(false)
      await keys.budgets.settle(next as Reservation, 4n)
      expect(await keys.budgets.state(id)).toMatchObject({ spent: 4n, reserved: 0n })
    })

    it('a reservation its process never settled (it crashed) stops counting after an hour', async () => {
      const { keys, now } = await fresh()
      const { id } = await keys.create('c', { budget: 10n })
      expect('refused' in (await keys.budgets.reserve(id, 10n))).toBe(false)
      expect('refused' in (await keys.budgets.reserve(id, 1n))).toBe(true)
      now.ms += 3_600_000 + 60_000
      // The first call after the hour frees what the dead one held (Postgres sweeps it in the background).
      await keys.budgets.reserve(id, 1n)
      await expect.poll(async () => (await keys.budgets.state(id))?.reserved).toBeLessThanOrEqual(1n)
      expect('refused' in (await keys.budgets.reserve(id, 8n))).toBe(false)
    })

    it('a key without a budget reserves nothing and is never refused', async () => {
      const { keys } = await fresh()
      const { id } = await keys.create('free')
      const r = await keys.budgets.reserve(id, 10n ** 30n)
      expect('refused' in r).toBe(false)
    })
  })

  describe('rate limits', () => {
    it('50 concurrent requests against 5 a minute: exactly 5 pass, the refusals count nothing and say when to retry', async () => {
      const { rates } = await fresh()
      const key = `k-${Math.random()}`
      const decisions = await Promise.all(Array.from({ length: 50 }, () => rates.admit(key, { rpm: 5 }, 1)))
      expect(decisions.filter((d) => d.ok)).toHaveLength(5)
      const refused = decisions.find((d) => !d.ok)!
      expect(refused.retryAfter).toBeGreaterThanOrEqual(1)
      expect(refused.retryAfter).toBeLessThanOrEqual(60)
      expect(refused.headers['x-ratelimit-remaining-requests']).toBe('0')
    })

    it('tokens charged after the answers count against the next admissions', async () => {
      const { rates } = await fresh()
      const key = `k-${Math.random()}`
      expect((await rates.admit(key, { tpm: 100 }, 10)).ok).toBe(true)
      await rates.charge(key, 95)
      expect((await rates.admit(key, { tpm: 100 }, 10)).ok).toBe(false)
      expect((await rates.admit(key, { tpm: 100 }, 5)).ok).toBe(true)
    })
  })

  describe('responses', () => {
    const turn = (id: string, previous: string | null, said: string, key = 'key_a'): StoredResponse => ({
      id,
      apiKeyId: key,
      createdAt: 1,
      previousResponseId: previous,
      input: [{ type: 'message', id: `in_${id}`, role: 'user', content: [{ type: 'input_text', text: said }] }],
      response: { id, object: 'response', output: [{ type: 'message', id: `out_${id}`, text: `re: ${said}` }] },
    })

    it('keeps a chain of turns for the key that made it, and rebuilds the conversation oldest first', async () => {
      const { responses } = await fresh()
      await responses.save(turn('r1', null, 'one'))
      await responses.save(turn('r2', 'r1', 'two'))
      await responses.save(turn('r3', 'r2', 'three'))
      expect((await responses.get('r2', 'key_a'))?.response).toEqual(turn('r2', 'r1', 'two').response)
      expect(await responses.get('r2', 'key_b')).toBeUndefined()
      const items = await responses.conversation('r3', 'key_a')
      expect(items?.map((i) => i.id)).toEqual(['in_r1', 'out_r1', 'in_r2', 'out_r2', 'in_r3', 'out_r3'])
      expect(await responses.conversation('r3', 'key_b')).toBeUndefined()
      expect(await responses.conversation('nope', 'key_a')).toBeUndefined()
    })

    it('a deleted turn breaks the chains after it; only its key can delete it', async () => {
      const { responses } = await fresh()
      await responses.save(turn('r1', null, 'one'))
      await responses.save(turn('r2', 'r1', 'two'))
      expect(await responses.delete('r1', 'key_b')).toBe(false)
      expect(await responses.delete('r1', 'key_a')).toBe(true)
      expect(await responses.delete('r1', 'key_a')).toBe(false)
      await expect(Promise.resolve().then(() => responses.conversation('r2', 'key_a'))).rejects.toThrow(
        BrokenChainError,
      )
    })
  })

  describe('usage ledger', () => {
    it('keeps a record exactly, once however often it is written, with its verification and receipt', async () => {
      const { ledger } = await fresh()
      const record = call({ fee: 123_456_789_012_345_678_901_234_567_890n })
      await ledger.recordDurably(record)
      await ledger.recordDurably(record)
      ledger.setVerification(record.requestId, 'verified', 'L1', 'signed', '{"receipt":1}')
      const stored = await ledger.get(record.requestId)
      expect(stored).toEqual({
        ...record,
        provider: record.provider.toLowerCase(),
        verification: 'verified',
        verificationLevel: 'L1',
        verificationDetail: 'signed',
        signedReceipt: '{"receipt":1}',
      })
      expect(await ledger.calls({ since: 0 })).toHaveLength(1)
      expect(await ledger.get('nope')).toBeUndefined()
    })

    it('adds up spend by key, day and provider in neuron, and fees by provider with the verified part', async () => {
      const { ledger } = await fresh()
      const day1 = Date.UTC(2026, 5, 10, 23, 59)
      const day2 = Date.UTC(2026, 5, 11, 0, 1)
      const b = '0x00000000000000000000000000000000000000bb' as Address
      await Promise.all([
        ledger.recordDurably(call({ createdAt: day1, fee: 10n ** 20n, verification: 'verified' })),
        ledger.recordDurably(call({ createdAt: day2, fee: 2n, apiKeyId: 'key_b', verification: 'disputed' })),
        ledger.recordDurably(call({ createdAt: day2, fee: 3n, provider: b, verification: 'verified' })),
      ])
      const byKeyDay = await ledger.spend({ since: 0, by: ['key', 'day'] })
      expect(byKeyDay).toEqual([
        { key: 'key_a', day: '2026-06-10', calls: 1, fee: 10n ** 20n, verified: 1, verifiedFee: 10n ** 20n, failed: 0 },
        { key: 'key_a', day: '2026-06-11', calls: 1, fee: 3n, verified: 1, verifiedFee: 3n, failed: 0 },
        { key: 'key_b', day: '2026-06-11', calls: 1, fee: 2n, verified: 0, verifiedFee: 0n, failed: 1 },
      ])
      expect(await ledger.spend({ since: day2 })).toEqual([
        { calls: 2, fee: 5n, verified: 1, verifiedFee: 3n, failed: 1 },
      ])
      expect(await ledger.feesByProvider()).toEqual([
        {
          provider: '0x00000000000000000000000000000000000000aa',
          calls: 2,
          fee: 10n ** 20n + 2n,
          verifiedFee: 10n ** 20n,
        },
        { provider: b, calls: 1, fee: 3n, verifiedFee: 3n },
      ])
    })

    it('remembers when an operator resumed a provider', async () => {
      const { ledger } = await fresh()
      await ledger.markResumed('0x00000000000000000000000000000000000000AA' as Address, 1234)
      await ledger.markResumed('0x00000000000000000000000000000000000000AA' as Address, 5678)
      expect(await ledger.resumes()).toEqual(new Map([['0x00000000000000000000000000000000000000aa', 5678]]))
    })
  })
})

describe('Postgres migrations', () => {
  let db: Awaited<ReturnType<typeof testDatabase>>
  beforeAll(async () => {
    db = await testDatabase()
  }, 60_000)
  afterAll(() => db?.dispose())

  it('run once however many instances start together, and refuse a schema newer than this code', async () => {
    const pools = Array.from({ length: 4 }, () => connectPostgres(db.url, { max: 2 }))
    try {
      const applied = await Promise.all(pools.map((sql) => migrate(sql)))
      const versions = migrations().map((m) => m.version)
      expect(applied.flat().sort()).toEqual(versions)
      const [sql] = pools as [Sql]
      expect((await sql`SELECT version FROM zg_schema_migrations ORDER BY version`).map((r) => r.version)).toEqual(
        versions,
      )
      await sql`INSERT INTO zg_schema_migrations (version, name) VALUES (9999, 'future')`
      await expect(migrate(sql)).rejects.toThrow(/newer than this zg-gateway knows/)
    } finally {
      await Promise.all(pools.map((sql) => sql.end({ timeout: 5 })))
    }
  })
})
