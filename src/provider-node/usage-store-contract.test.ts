/**
 * The same assertions on both provider usage stores: SQLite (one node) and Postgres (several nodes of one provider,
 * a real server from test/support/postgres.ts). What the node and the settlement job rely on must hold on either.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Address } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { testDatabase } from '../../test/support/postgres.ts'
import { connectPostgres, type Sql } from '../store/postgres/connect.ts'
import { migrate } from '../store/postgres/migrate.ts'
import { PostgresUsageStore } from './postgres-usage-store.ts'
import { SqliteUsageStore, type UsageRecord, type UsageStore } from './usage-store.ts'

const PROVIDER = '0x00000000000000000000000000000000000000Bb' as Address
const USER = '0x00000000000000000000000000000000000000Aa' as Address
const OTHER = '0x00000000000000000000000000000000000000Cc' as Address

type Backend = { name: string; open(provider?: Address): Promise<UsageStore>; close(): Promise<void> }

function sqliteBackend(): Backend {
  const dirs: string[] = []
  const open: SqliteUsageStore[] = []
  return {
    name: 'SQLite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'zg-provider-contract-'))
      dirs.push(dir)
      const store = new SqliteUsageStore(join(dir, 'usage.sqlite'))
      open.push(store)
      return store
    },
    async close() {
      for (const s of open) s.close()
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    },
  }
}

let db: Awaited<ReturnType<typeof testDatabase>> | undefined
let sql: Sql | undefined

/** One database for the file, opened on first use; closed after the last test that uses it. */
function postgresBackend(): Backend {
  return {
    name: 'Postgres',
    async open(provider = PROVIDER) {
      if (!db) {
        db = await testDatabase()
        sql = connectPostgres(db.url, { max: 10 })
        await migrate(sql)
      }
      await sql!`TRUNCATE provider_requests, provider_settlements, provider_signatures`
      return new PostgresUsageStore(sql!, { provider, unsettledTtlMs: 0 })
    },
    async close() {},
  }
}

afterAll(async () => {
  await sql?.end({ timeout: 5 })
  await db?.dispose()
}, 60_000)

const usage = (fee: bigint, over: Partial<UsageRecord> = {}) => ({
  user: USER,
  createdAt: Date.now(),
  endpoint: 'chat/completions',
  model: 'm',
  inputCount: 3n,
  outputCount: 4n,
  inputFee: 1n,
  outputFee: fee - 1n,
  fee,
  ...over,
})

const signature = (text: string) => ({ text, signature: `0x${'ab'.repeat(65)}` as const, createdAt: Date.now() })

for (const backend of [sqliteBackend(), postgresBackend()]) {
  describe(`provider usage store contract: ${backend.name}`, () => {
    afterAll(() => backend.close(), 60_000)

    it('records a delivery (bill and signature together), with users lower-case and amounts exact', async () => {
      const store = await backend.open()
      const big = 10n ** 30n + 7n
      await store.recordDelivery({ resKey: 'k1', usage: usage(big), signature: signature('h1:h2') })
      await store.recordDelivery({ resKey: 'k2', signature: signature('h3:h4') })
      expect(await store.getSignature('k1')).toMatchObject({ text: 'h1:h2', signature: `0x${'ab'.repeat(65)}` })
      expect(await store.getSignature('k2')).toMatchObject({ text: 'h3:h4' })
      expect(await store.getSignature('nope')).toBeUndefined()
      const records = await store.records()
      expect(records).toHaveLength(1)
      expect(records[0]).toMatchObject({ resKey: 'k1', user: USER.toLowerCase(), fee: big, inputCount: 3n })
      expect(await store.unsettledFee(USER)).toBe(big)
      expect(await store.unsettledFee(USER.toLowerCase() as Address)).toBe(big)
      expect(await store.unsettledTotal()).toBe(big)
      expect(await store.usersWithUnsettled()).toEqual([USER.toLowerCase()])
      // A duplicate key is refused whole: neither half of the second delivery is written.
      await expect(
        Promise.resolve().then(() =>
          store.recordDelivery({ resKey: 'k1', usage: usage(5n), signature: signature('x:y') }),
        ),
      ).rejects.toThrow()
      expect(await store.getSignature('k1')).toMatchObject({ text: 'h1:h2' })
      expect(await store.unsettledFee(USER)).toBe(big)
    })

    it("takes back an undelivered call's fee, but never one a settlement has claimed", async () => {
      const store = await backend.open()
      await store.recordDelivery({ resKey: 'a', usage: usage(5n) })
      await store.recordDelivery({ resKey: 'b', usage: usage(7n) })
      expect(await store.unsettledFee(USER)).toBe(12n)
      expect(await store.unrecord('a')).toBe(true)
      expect(await store.unsettledFee(USER)).toBe(7n)
      expect(await store.unrecord('a')).toBe(false)
      await store.beginSettlement({ user: USER, nonce: 1n, totalFee: 7n, requestsHash: '0x00', resKeys: ['b'] })
      expect(await store.unrecord('b')).toBe(false)
      expect(await store.unsettledFee(USER)).toBe(7n)
    })

    it('hands records to settlement oldest first, and a claim is all or nothing', async () => {
      const store = await backend.open()
      const t = Date.now()
      await store.recordDelivery({ resKey: 'late', usage: usage(3n, { createdAt: t + 10 }) })
      await store.recordDelivery({ resKey: 'early', usage: usage(2n, { createdAt: t }) })
      await store.recordDelivery({ resKey: 'other', usage: usage(9n, { user: OTHER }) })
      expect((await store.unsettledRecords(USER)).map((r) => r.resKey)).toEqual(['early', 'late'])
      const first = await store.beginSettlement({
        user: USER,
        nonce: 5n,
        totalFee: 2n,
        requestsHash: '0x01',
        resKeys: ['early'],
      })
      // 'early' is taken: a second claim over it fails and leaves 'late' free.
      await expect(
        Promise.resolve().then(() =>
          store.beginSettlement({
            user: USER,
            nonce: 6n,
            totalFee: 5n,
            requestsHash: '0x02',
            resKeys: ['late', 'early'],
          }),
        ),
      ).rejects.toThrow(/no longer free/)
      expect((await store.unsettledRecords(USER)).map((r) => r.resKey)).toEqual(['late'])
      expect((await store.settlements()).map((s) => s.id)).toEqual([first])
      expect(await store.usersWithUnsettled()).toEqual([USER.toLowerCase(), OTHER.toLowerCase()])
      expect(await store.lastNonce(USER)).toBe(5n)
      expect(await store.lastNonce(OTHER)).toBe(0n)
      expect((await store.settlementRecords(first)).map((r) => r.resKey)).toEqual(['early'])
    })

    it('keeps a settlement open from its claim to its outcome: sent, settled, partial, abandoned', async () => {
      const store = await backend.open()
      for (const [k, fee] of [
        ['r1', 1n],
        ['r2', 2n],
        ['r3', 4n],
      ] as const)
        await store.recordDelivery({ resKey: k, usage: usage(fee) })
      const id = await store.beginSettlement({
        user: USER,
        nonce: 10n,
        totalFee: 7n,
        requestsHash: '0x03',
        resKeys: ['r1', 'r2', 'r3'],
      })
      expect(await store.openSettlements()).toMatchObject([{ id, status: 'pending', txHash: null, txNonce: null }])
      await store.markSent([id], '0xfeed', 42)
      expect(await store.openSettlements()).toMatchObject([
        { id, status: 'sent', txHash: '0xfeed', txNonce: 42, nonce: 10n, totalFee: 7n },
      ])
      // The chain paid for the oldest two only: the third is free again, the first two settled for good.
      await store.completeSettlement(id, 'partial', ['r1', 'r2'])
      expect(await store.openSettlements()).toEqual([])
      expect((await store.records({ settled: true })).map((r) => r.resKey)).toEqual(['r1', 'r2'])
      expect((await store.unsettledRecords(USER)).map((r) => r.resKey)).toEqual(['r3'])
      expect(await store.unsettledFee(USER)).toBe(4n)
      const again = await store.beginSettlement({
        user: USER,
        nonce: 11n,
        totalFee: 4n,
        requestsHash: '0x04',
        resKeys: ['r3'],
      })
      await store.abandonSettlement(again, 'INVALID_NONCE')
      expect((await store.unsettledRecords(USER)).map((r) => r.resKey)).toEqual(['r3'])
      const last = await store.beginSettlement({
        user: USER,
        nonce: 12n,
        totalFee: 4n,
        requestsHash: '0x05',
        resKeys: ['r3'],
      })
      await store.completeSettlement(last, '0xbeef')
      expect(await store.unsettledFee(USER)).toBe(0n)
      expect(await store.unsettledTotal()).toBe(0n)
      expect((await store.settlements()).map((s) => s.status)).toEqual(['settled', 'failed', 'settled'])
      expect(await store.lastNonce(USER)).toBe(12n)
    })

    it('prunes signatures older than asked, and nothing else', async () => {
      const store = await backend.open()
      await store.recordDelivery({ resKey: 'old', signature: { ...signature('o'), createdAt: 1000 } })
      await store.recordDelivery({ resKey: 'new', signature: signature('n') })
      expect(await store.pruneSignatures(2000)).toBe(1)
      expect(await store.getSignature('old')).toBeUndefined()
      expect(await store.getSignature('new')).toBeDefined()
    })

    it('runs a settlement under its exclusive turn', async () => {
      const store = await backend.open()
      expect(await store.exclusively(async () => 7)).toEqual({ ran: true, value: 7 })
      await expect(
        store.exclusively(async () => {
          throw new Error('boom')
        }),
      ).rejects.toThrow('boom')
      // A failed run gives its turn back.
      expect(await store.exclusively(async () => 8)).toEqual({ ran: true, value: 8 })
    })
  })
}

describe('provider usage store: Postgres shared by several nodes', () => {
  const backend = postgresBackend()
  afterAll(() => backend.close(), 60_000)

  it("two nodes of one provider see each other's records; another provider's stay apart", async () => {
    const a = await backend.open()
    const b = new PostgresUsageStore(sql!, { provider: PROVIDER, unsettledTtlMs: 0, node: 'b' })
    const stranger = new PostgresUsageStore(sql!, { provider: OTHER, unsettledTtlMs: 0 })
    await a.recordDelivery({ resKey: 'x', usage: usage(5n), signature: signature('s') })
    await b.recordDelivery({ resKey: 'y', usage: usage(6n) })
    expect(await a.unsettledFee(USER)).toBe(11n)
    expect(await b.unsettledFee(USER)).toBe(11n)
    expect(await b.getSignature('x')).toMatchObject({ text: 's' })
    expect(await stranger.unsettledFee(USER)).toBe(0n)
    expect(await stranger.records()).toEqual([])
    expect(await stranger.getSignature('x')).toBeUndefined()
    // The same response key under another provider is another record.
    await stranger.recordDelivery({ resKey: 'x', usage: usage(1n) })
    expect(await a.unsettledFee(USER)).toBe(11n)
    const id = await b.beginSettlement({
      user: USER,
      nonce: 1n,
      totalFee: 11n,
      requestsHash: '0x00',
      resKeys: ['x', 'y'],
    })
    expect((await a.openSettlements()).map((s) => [s.id, s.node])).toEqual([[id, 'b']])
    expect(await a.unrecord('x')).toBe(false)
  })

  it('admission reads a cached sum for at most its TTL, counting its own commits at once', async () => {
    await backend.open()
    const a = new PostgresUsageStore(sql!, { provider: PROVIDER, unsettledTtlMs: 60_000 })
    const b = new PostgresUsageStore(sql!, { provider: PROVIDER, unsettledTtlMs: 60_000 })
    expect(await a.unsettledFee(USER)).toBe(0n)
    // Cached now: synchronous, and its own commit is counted at once; another node's is not seen until the TTL.
    await a.recordDelivery({ resKey: 'own', usage: usage(3n) })
    await b.recordDelivery({ resKey: 'theirs', usage: usage(4n) })
    expect(a.unsettledFee(USER)).toBe(3n)
    const fresh = new PostgresUsageStore(sql!, { provider: PROVIDER, unsettledTtlMs: 0 })
    expect(await fresh.unsettledFee(USER)).toBe(7n)
  })

  it('lets one node settle at a time, and passes the turn on when the holder dies', async () => {
    await backend.open()
    const other = connectPostgres(db!.url, { max: 2 })
    try {
      const a = new PostgresUsageStore(sql!, { provider: PROVIDER })
      const b = new PostgresUsageStore(other, { provider: PROVIDER })
      const elsewhere = new PostgresUsageStore(other, { provider: OTHER })
      let inside!: () => void
      const entered = new Promise<void>((r) => {
        inside = r
      })
      let leave!: () => void
      const held = a.exclusively(
        () =>
          new Promise<string>((resolve) => {
            inside()
            leave = () => resolve('a')
          }),
      )
      await entered
      expect(await b.exclusively(async () => 'b')).toEqual({ ran: false })
      // Another provider's settlement is not held up.
      expect(await elsewhere.exclusively(async () => 'c')).toEqual({ ran: true, value: 'c' })
      leave()
      expect(await held).toEqual({ ran: true, value: 'a' })
      expect(await b.exclusively(async () => 'b')).toEqual({ ran: true, value: 'b' })

      // A holder whose session ends (a killed process) lets go of the turn without unlocking.
      const dying = connectPostgres(db!.url, { max: 1, applicationName: 'zg-dying-node' })
      const d = new PostgresUsageStore(dying, { provider: PROVIDER })
      let dyingInside!: () => void
      const dyingEntered = new Promise<void>((r) => {
        dyingInside = r
      })
      void d
        .exclusively(
          () =>
            new Promise<never>(() => {
              dyingInside()
            }),
        )
        .catch(() => {})
      await dyingEntered
      expect(await b.exclusively(async () => 'b')).toEqual({ ran: false })
      await sql!`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'zg-dying-node'`
      await dying.end({ timeout: 1 }).catch(() => {})
      expect(await b.exclusively(async () => 'b')).toEqual({ ran: true, value: 'b' })
    } finally {
      await other.end({ timeout: 5 })
    }
  })
})
