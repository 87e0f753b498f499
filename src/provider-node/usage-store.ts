import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { Address, Hex } from 'viem'
import { BACKSTOP_PAGES, checkpointInBackground } from '../billing/wal-checkpointer.ts'

/** One billed response, as the provider records it until it is settled on-chain. */
export type UsageRecord = {
  /** The ZG-Res-Key the client received (a uuid). */
  resKey: string
  user: Address
  /** ms since the epoch; settlement takes a user's records in this order. */
  createdAt: number
  endpoint: string
  model: string
  inputCount: bigint
  outputCount: bigint
  inputFee: bigint
  outputFee: bigint
  fee: bigint
}

export type ChatSignatureRecord = { text: string; signature: Hex; createdAt: number }

export type SettlementRow = {
  id: number
  user: Address
  nonce: bigint
  totalFee: bigint
  requestsHash: Hex
  status: 'pending' | 'sent' | 'settled' | 'failed'
  txHash: Hex | null
  /** The provider wallet's transaction nonce of txHash: once the wallet has moved past it, the tx can never land. */
  txNonce: number | null
  detail: string | null
  /** The node that started it (Postgres: several nodes share the store); null where only one node writes. */
  node?: string | null
}

/** A value now, or once the store has it: the SQLite store answers at once, the Postgres one over the network. */
export type Maybe<T> = T | Promise<T>

/** What ran under {@link UsageStore.exclusively}: its value, or `ran: false` when another node held the turn. */
export type Exclusive<T> = { ran: true; value: T } | { ran: false }

/**
 * The provider's durable ledger of billed responses, their signatures and settlements: SQLite in the data dir for
 * one node ({@link SqliteUsageStore}), or Postgres shared by several nodes of one service (PostgresUsageStore).
 * Either way a record is committed before its client sees the end of the answer, a settlement's claim on its
 * records is atomic, and a settlement's signed transaction hash is stored before it is broadcast.
 */
export interface UsageStore {
  /** Records one delivered response (its bill and its signature) in one durable commit. */
  recordDelivery(delivery: {
    resKey: string
    usage?: Omit<UsageRecord, 'resKey'>
    signature?: ChatSignatureRecord
  }): Maybe<void>
  /** Takes back the fee of a response its client never received whole; false if none (or already claimed). */
  unrecord(resKey: string): Maybe<boolean>
  getSignature(resKey: string): Maybe<ChatSignatureRecord | undefined>
  /** Drops response signatures recorded before `before` (ms). */
  pruneSignatures(before: number): Maybe<number>
  /** The sum of the user's billed, not yet settled fees (records in a pending settlement included). */
  unsettledFee(user: Address): Maybe<bigint>
  /** What every user owes and the chain has not yet settled. */
  unsettledTotal(): Maybe<bigint>
  /** Users with records that are neither settled nor in a settlement under way. */
  usersWithUnsettled(): Maybe<Address[]>
  /** The user's records free for settlement, oldest first. */
  unsettledRecords(user: Address): Maybe<UsageRecord[]>
  /** The highest settlement nonce signed for the user (0 if none). */
  lastNonce(user: Address): Maybe<bigint>
  /** Claims records for a new settlement, atomically; throws if any is no longer free. */
  beginSettlement(params: {
    user: Address
    nonce: bigint
    totalFee: bigint
    requestsHash: Hex
    resKeys: string[]
  }): Maybe<number>
  /** Records the signed transaction before it is broadcast. */
  markSent(ids: number[], txHash: Hex, txNonce: number): Maybe<void>
  /** The settlement landed (with `settledKeys`: only those records; the rest are free again). */
  completeSettlement(id: number, detail?: string, settledKeys?: string[]): Maybe<void>
  /** The settlement did not happen: its records are free again. */
  abandonSettlement(id: number, detail: string): Maybe<void>
  /** Settlements started but whose outcome is not recorded. */
  openSettlements(): Maybe<SettlementRow[]>
  settlements(): Maybe<SettlementRow[]>
  /** The records a settlement claimed, oldest first. */
  settlementRecords(id: number): Maybe<UsageRecord[]>
  /** Every record, for reports and tests. */
  records(filter?: { settled?: boolean }): Maybe<(UsageRecord & { settled: boolean })[]>
  /**
   * Runs `fn` as the only settler of this store's provider, or not at all when another holds that turn: settlement
   * signs with the provider's wallet, and two settlers would race on its transaction nonces and on the records.
   */
  exclusively<T>(fn: () => Promise<T>): Promise<Exclusive<T>>
  close(): Maybe<void>
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS requests (
  res_key TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  endpoint TEXT NOT NULL,
  model TEXT NOT NULL,
  input_count TEXT NOT NULL,
  output_count TEXT NOT NULL,
  input_fee TEXT NOT NULL,
  output_fee TEXT NOT NULL,
  fee TEXT NOT NULL,
  settlement_id INTEGER,
  settled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_unsettled ON requests (user, settled, created_at);
CREATE TABLE IF NOT EXISTS settlements (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user TEXT NOT NULL,
  nonce TEXT NOT NULL,
  total_fee TEXT NOT NULL,
  requests_hash TEXT NOT NULL,
  status TEXT NOT NULL,
  tx_hash TEXT,
  tx_nonce INTEGER,
  detail TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signatures (
  res_key TEXT PRIMARY KEY,
  text TEXT NOT NULL,
  signature TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signatures_age ON signatures (created_at);
`

type Row = Record<string, string | number | null>

const toRecord = (r: Row): UsageRecord => ({
  resKey: r.res_key as string,
  user: r.user as Address,
  createdAt: r.created_at as number,
  endpoint: r.endpoint as string,
  model: r.model as string,
  inputCount: BigInt(r.input_count as string),
  outputCount: BigInt(r.output_count as string),
  inputFee: BigInt(r.input_fee as string),
  outputFee: BigInt(r.output_fee as string),
  fee: BigInt(r.fee as string),
})

const toSettlement = (r: Row): SettlementRow => ({
  id: r.id as number,
  user: r.user as Address,
  nonce: BigInt(r.nonce as string),
  totalFee: BigInt(r.total_fee as string),
  requestsHash: r.requests_hash as Hex,
  status: r.status as SettlementRow['status'],
  txHash: (r.tx_hash as Hex | null) ?? null,
  txNonce: (r.tx_nonce as number | null) ?? null,
  detail: (r.detail as string | null) ?? null,
})

/**
 * The provider's durable ledger of billed responses, their signatures and settlements (node:sqlite, WAL).
 * WAL with synchronous=NORMAL makes every committed record survive a crash of the process (kill -9); only a
 * power loss can take the last few. Users are stored lower-case so lookups never depend on checksum casing.
 */
export class SqliteUsageStore implements UsageStore {
  readonly #db: DatabaseSync
  readonly #insertRequest: StatementSync
  readonly #insertSignature: StatementSync
  readonly #getSignature: StatementSync
  readonly #unsettledFee: StatementSync
  readonly #unrecord: StatementSync
  readonly #begin: StatementSync
  readonly #commit: StatementSync
  readonly #rollback: StatementSync
  /** Unsettled fee per user (lower-case), loaded on first use. */
  readonly #unsettled = new Map<string, bigint>()
  readonly #stopCheckpoints: (() => void) | undefined

  /** `onCheckpointError`: where a failed background WAL checkpoint is told (see checkpointInBackground). */
  constructor(path: string, options: { onCheckpointError?: (err: Error) => void } = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    this.#db = new DatabaseSync(path)
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    this.#db.exec(SCHEMA)
    if (path !== ':memory:') {
      // Checkpoints leave the request path: a record's commit is the node's answer's wait (see recordDelivery).
      this.#stopCheckpoints = checkpointInBackground(path, { onError: options.onCheckpointError })
      this.#db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_PAGES}`)
    }
    this.#insertRequest = this.#db.prepare(
      `INSERT INTO requests (res_key, user, created_at, endpoint, model, input_count, output_count, input_fee, output_fee, fee)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.#insertSignature = this.#db.prepare(
      'INSERT OR REPLACE INTO signatures (res_key, text, signature, created_at) VALUES (?, ?, ?, ?)',
    )
    this.#getSignature = this.#db.prepare('SELECT text, signature, created_at FROM signatures WHERE res_key = ?')
    this.#unsettledFee = this.#db.prepare('SELECT fee FROM requests WHERE user = ? AND settled = 0')
    this.#unrecord = this.#db.prepare(
      'DELETE FROM requests WHERE res_key = ? AND settled = 0 AND settlement_id IS NULL RETURNING user, fee',
    )
    // Prepared once: a transaction per answer, and exec() would parse these again each time.
    this.#begin = this.#db.prepare('BEGIN')
    this.#commit = this.#db.prepare('COMMIT')
    this.#rollback = this.#db.prepare('ROLLBACK')
  }

  /**
   * Records one delivered response in a single commit, before the client sees the end of it: its bill (when usage is
   * known) and its signature. A crash after the commit loses nothing the client was charged for; one commit a
   * response instead of two halves the node's WAL writes.
   */
  recordDelivery(delivery: {
    resKey: string
    usage?: Omit<UsageRecord, 'resKey'>
    signature?: ChatSignatureRecord
  }): void {
    const { resKey, usage, signature } = delivery
    if (!usage && !signature) return
    this.#begin.run()
    try {
      if (usage) {
        this.#insertRequest.run(
          resKey,
          usage.user.toLowerCase(),
          usage.createdAt,
          usage.endpoint,
          usage.model,
          usage.inputCount.toString(),
          usage.outputCount.toString(),
          usage.inputFee.toString(),
          usage.outputFee.toString(),
          usage.fee.toString(),
        )
      }
      if (signature) this.#insertSignature.run(resKey, signature.text, signature.signature, signature.createdAt)
      this.#commit.run()
    } catch (err) {
      try {
        this.#rollback.run()
      } catch {
        // The failed statement ended the transaction already; the error that counts is the one above.
      }
      throw err
    }
    if (usage) {
      const key = usage.user.toLowerCase()
      const cached = this.#unsettled.get(key)
      if (cached !== undefined) this.#unsettled.set(key, cached + usage.fee)
    }
  }

  /**
   * Takes back the fee of a recorded response its client never received whole; false if there is none to take back
   * (nothing was billed, or a settlement has claimed it already).
   */
  unrecord(resKey: string): boolean {
    const r = this.#unrecord.get(resKey) as Row | undefined
    if (!r) return false
    const key = r.user as string
    const cached = this.#unsettled.get(key)
    if (cached !== undefined) this.#unsettled.set(key, cached - BigInt(r.fee as string))
    return true
  }

  getSignature(resKey: string): ChatSignatureRecord | undefined {
    const r = this.#getSignature.get(resKey) as Row | undefined
    return r ? { text: r.text as string, signature: r.signature as Hex, createdAt: r.created_at as number } : undefined
  }

  /** Drops response signatures recorded before `before` (ms); they are served for a bounded time only. */
  pruneSignatures(before: number): number {
    return Number(this.#db.prepare('DELETE FROM signatures WHERE created_at < ?').run(before).changes)
  }

  /** The sum of the user's billed, not yet settled fees (records in a pending settlement included). */
  unsettledFee(user: Address): bigint {
    const key = user.toLowerCase()
    let sum = this.#unsettled.get(key)
    if (sum === undefined) {
      // Read once per user, then kept current by recordUsage: admission asks on every request.
      sum = 0n
      for (const r of this.#unsettledFee.all(key) as Row[]) sum += BigInt(r.fee as string)
      this.#unsettled.set(key, sum)
    }
    return sum
  }

  unsettledTotal(): bigint {
    const rows = this.#db.prepare('SELECT fee FROM requests WHERE settled = 0').all() as Row[]
    return rows.reduce((sum, r) => sum + BigInt(r.fee as string), 0n)
  }

  /** One process writes this file: its settlement job is already one at a time (startProviderNode). */
  async exclusively<T>(fn: () => Promise<T>): Promise<Exclusive<T>> {
    return { ran: true, value: await fn() }
  }

  /** Users with records that are neither settled nor in a settlement under way. */
  usersWithUnsettled(): Address[] {
    const rows = this.#db
      .prepare('SELECT DISTINCT user FROM requests WHERE settled = 0 AND settlement_id IS NULL ORDER BY user')
      .all() as Row[]
    return rows.map((r) => r.user as Address)
  }

  /** The user's records free for settlement, oldest first. */
  unsettledRecords(user: Address): UsageRecord[] {
    const rows = this.#db
      .prepare(
        'SELECT * FROM requests WHERE user = ? AND settled = 0 AND settlement_id IS NULL ORDER BY created_at ASC, rowid ASC',
      )
      .all(user.toLowerCase()) as Row[]
    return rows.map(toRecord)
  }

  /** The highest settlement nonce this node has signed for the user (0 if none). */
  lastNonce(user: Address): bigint {
    const rows = this.#db.prepare('SELECT nonce FROM settlements WHERE user = ?').all(user.toLowerCase()) as Row[]
    return rows.reduce((max, r) => (BigInt(r.nonce as string) > max ? BigInt(r.nonce as string) : max), 0n)
  }

  /**
   * Claims records for a new settlement, atomically: the settlement row is written and the records tied to it
   * before anything is sent, so a crash can never leave them claimable twice.
   */
  beginSettlement(params: {
    user: Address
    nonce: bigint
    totalFee: bigint
    requestsHash: Hex
    resKeys: string[]
  }): number {
    const now = Date.now()
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const { lastInsertRowid } = this.#db
        .prepare(
          `INSERT INTO settlements (user, nonce, total_fee, requests_hash, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
        )
        .run(
          params.user.toLowerCase(),
          params.nonce.toString(),
          params.totalFee.toString(),
          params.requestsHash,
          now,
          now,
        )
      const id = Number(lastInsertRowid)
      const claim = this.#db.prepare(
        'UPDATE requests SET settlement_id = ? WHERE res_key = ? AND settled = 0 AND settlement_id IS NULL',
      )
      for (const key of params.resKeys) {
        if (Number(claim.run(id, key).changes) !== 1) throw new Error(`record ${key} is no longer free to settle`)
      }
      this.#db.exec('COMMIT')
      return id
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /** Records the signed transaction before it is broadcast, so a crash can always find out what became of it. */
  markSent(ids: number[], txHash: Hex, txNonce: number): void {
    const update = this.#db.prepare(
      "UPDATE settlements SET status = 'sent', tx_hash = ?, tx_nonce = ?, updated_at = ? WHERE id = ?",
    )
    this.#db.exec('BEGIN')
    try {
      for (const id of ids) update.run(txHash, txNonce, Date.now(), id)
      this.#db.exec('COMMIT')
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /**
   * The settlement landed: its records are settled for good. With `settledKeys` (a partial settlement), only
   * those records are; the rest are free again for a later settlement.
   */
  completeSettlement(id: number, detail?: string, settledKeys?: string[]): void {
    this.#unsettled.clear()
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      this.#db
        .prepare("UPDATE settlements SET status = 'settled', detail = ?, updated_at = ? WHERE id = ?")
        .run(detail ?? null, Date.now(), id)
      if (settledKeys) {
        const settle = this.#db.prepare('UPDATE requests SET settled = 1 WHERE settlement_id = ? AND res_key = ?')
        for (const key of settledKeys) settle.run(id, key)
        this.#db.prepare('UPDATE requests SET settlement_id = NULL WHERE settlement_id = ? AND settled = 0').run(id)
      } else {
        this.#db.prepare('UPDATE requests SET settled = 1 WHERE settlement_id = ?').run(id)
      }
      this.#db.exec('COMMIT')
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /** The settlement did not happen: its records are free again for a later one (with a new nonce). */
  abandonSettlement(id: number, detail: string): void {
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      this.#db
        .prepare("UPDATE settlements SET status = 'failed', detail = ?, updated_at = ? WHERE id = ?")
        .run(detail, Date.now(), id)
      this.#db.prepare('UPDATE requests SET settlement_id = NULL WHERE settlement_id = ? AND settled = 0').run(id)
      this.#db.exec('COMMIT')
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /** Settlements that were started but whose outcome is not recorded (a crash, or a transaction still pending). */
  openSettlements(): SettlementRow[] {
    const rows = this.#db
      .prepare("SELECT * FROM settlements WHERE status IN ('pending', 'sent') ORDER BY id")
      .all() as Row[]
    return rows.map(toSettlement)
  }

  settlements(): SettlementRow[] {
    return (this.#db.prepare('SELECT * FROM settlements ORDER BY id').all() as Row[]).map(toSettlement)
  }

  /** The records a settlement claimed, oldest first. */
  settlementRecords(id: number): UsageRecord[] {
    const rows = this.#db
      .prepare('SELECT * FROM requests WHERE settlement_id = ? ORDER BY created_at ASC, rowid ASC')
      .all(id) as Row[]
    return rows.map(toRecord)
  }

  /** Every record, for reports and tests. */
  records(filter: { settled?: boolean } = {}): (UsageRecord & { settled: boolean })[] {
    const where = filter.settled === undefined ? '' : `WHERE settled = ${filter.settled ? 1 : 0}`
    const rows = this.#db.prepare(`SELECT * FROM requests ${where} ORDER BY created_at, rowid`).all() as Row[]
    return rows.map((r) => ({ ...toRecord(r), settled: r.settled === 1 }))
  }

  close(): void {
    this.#stopCheckpoints?.()
    this.#db.close()
  }
}
