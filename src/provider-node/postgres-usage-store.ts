import { hostname } from 'node:os'
import type { Address, Hex } from 'viem'
import type { Sql } from '../store/postgres/connect.ts'
import type { ChatSignatureRecord, Exclusive, SettlementRow, UsageRecord, UsageStore } from './usage-store.ts'

/**
 * How long a user's unsettled sum read from Postgres is trusted by admission (default). Within it, what other nodes
 * recorded since the read is not seen (this node's own records are added as they commit): see docs/provider-scaling.md.
 */
export const UNSETTLED_TTL_MS = 500

type Row = Record<string, unknown>

const RECORD = `res_key, user_address, created_at::float8 AS created_at, endpoint, model, input_count::text AS input_count,
  output_count::text AS output_count, input_fee::text AS input_fee, output_fee::text AS output_fee, fee::text AS fee`

const SETTLEMENT = `id::float8 AS id, user_address, nonce::text AS nonce, total_fee::text AS total_fee, requests_hash,
  status, tx_hash, tx_nonce::float8 AS tx_nonce, detail, node`

const toRecord = (r: Row): UsageRecord => ({
  resKey: r.res_key as string,
  user: r.user_address as Address,
  createdAt: Number(r.created_at),
  endpoint: r.endpoint as string,
  model: r.model as string,
  inputCount: BigInt(r.input_count as string),
  outputCount: BigInt(r.output_count as string),
  inputFee: BigInt(r.input_fee as string),
  outputFee: BigInt(r.output_fee as string),
  fee: BigInt(r.fee as string),
})

const toSettlement = (r: Row): SettlementRow => ({
  id: Number(r.id),
  user: r.user_address as Address,
  nonce: BigInt(r.nonce as string),
  totalFee: BigInt(r.total_fee as string),
  requestsHash: r.requests_hash as Hex,
  status: r.status as SettlementRow['status'],
  txHash: (r.tx_hash as Hex | null) ?? null,
  txNonce: r.tx_nonce === null ? null : Number(r.tx_nonce),
  detail: (r.detail as string | null) ?? null,
  node: (r.node as string | null) ?? null,
})

/**
 * The usage store in Postgres, shared by several provider-node processes of one service (one provider address):
 * each response's record is committed by the node that served it, in one statement, before its client sees the end
 * of it; settlements claim records in one transaction; and settlement runs on one node at a time, under a
 * session-level advisory lock per provider address (see {@link exclusively}). The pool is the caller's to close.
 */
export class PostgresUsageStore implements UsageStore {
  readonly #sql: Sql
  readonly #provider: string
  readonly #node: string
  readonly #ttlMs: number
  /** Per user (lower-case): the shared unsettled sum as last read, plus this node's commits since. */
  readonly #unsettled = new Map<string, { sum: bigint; at: number }>()
  /** Per user: a read of the sum under way, and the fees this node committed while it ran. */
  readonly #reading = new Map<string, { sum: Promise<bigint>; since: bigint }>()

  constructor(sql: Sql, options: { provider: Address; node?: string; unsettledTtlMs?: number }) {
    this.#sql = sql
    this.#provider = options.provider.toLowerCase()
    this.#node = options.node ?? `${hostname()}:${process.pid}`
    this.#ttlMs = options.unsettledTtlMs ?? UNSETTLED_TTL_MS
  }

  async recordDelivery(delivery: {
    resKey: string
    usage?: Omit<UsageRecord, 'resKey'>
    signature?: ChatSignatureRecord
  }): Promise<void> {
    const { resKey, usage, signature } = delivery
    const sql = this.#sql
    const p = this.#provider
    // One statement, so one round trip and all or nothing: the bill and the signature commit together.
    const request =
      usage &&
      sql`INSERT INTO provider_requests (provider, res_key, user_address, created_at, endpoint, model, input_count,
                                         output_count, input_fee, output_fee, fee)
          VALUES (${p}, ${resKey}, ${usage.user.toLowerCase()}, ${usage.createdAt}, ${usage.endpoint}, ${usage.model},
                  ${usage.inputCount.toString()}, ${usage.outputCount.toString()}, ${usage.inputFee.toString()},
                  ${usage.outputFee.toString()}, ${usage.fee.toString()})`
    const sign =
      signature &&
      sql`INSERT INTO provider_signatures (provider, res_key, text, signature, created_at)
          VALUES (${p}, ${resKey}, ${signature.text}, ${signature.signature}, ${signature.createdAt})
          ON CONFLICT (provider, res_key) DO UPDATE
            SET text = excluded.text, signature = excluded.signature, created_at = excluded.created_at`
    if (request && sign) await sql`WITH billed AS (${request}) ${sign}`
    else if (request) await request
    else if (sign) await sign
    if (usage) this.#added(usage.user.toLowerCase(), usage.fee)
  }

  /** This node's commit, counted at once in what admission reads (and in a read under way: counted twice is safe). */
  #added(key: string, fee: bigint): void {
    const cached = this.#unsettled.get(key)
    if (cached) cached.sum += fee
    const reading = this.#reading.get(key)
    if (reading) reading.since += fee
  }

  async unrecord(resKey: string): Promise<boolean> {
    const [r] = await this.#sql`
      DELETE FROM provider_requests
       WHERE provider = ${this.#provider} AND res_key = ${resKey} AND NOT settled AND settlement_id IS NULL
      RETURNING user_address, fee::text AS fee`
    if (!r) return false
    const cached = this.#unsettled.get(r.user_address as string)
    if (cached) cached.sum -= BigInt(r.fee as string)
    return true
  }

  async getSignature(resKey: string): Promise<ChatSignatureRecord | undefined> {
    const [r] = await this.#sql`
      SELECT text, signature, created_at::float8 AS created_at FROM provider_signatures
       WHERE provider = ${this.#provider} AND res_key = ${resKey}`
    return r ? { text: r.text as string, signature: r.signature as Hex, createdAt: Number(r.created_at) } : undefined
  }

  async pruneSignatures(before: number): Promise<number> {
    const result = await this.#sql`
      DELETE FROM provider_signatures WHERE provider = ${this.#provider} AND created_at < ${before}`
    return result.count
  }

  /**
   * Every node's unsettled records for the user: synchronous while the last read is younger than the TTL (admission
   * asks on every call), else one read, shared by the calls that wait on it.
   */
  unsettledFee(user: Address): bigint | Promise<bigint> {
    const key = user.toLowerCase()
    const cached = this.#unsettled.get(key)
    if (cached && Date.now() - cached.at < this.#ttlMs) return cached.sum
    const reading = this.#reading.get(key)
    if (reading) return reading.sum
    const started = Date.now()
    const entry = { sum: Promise.resolve(0n), since: 0n }
    entry.sum = (async () => {
      try {
        const [r] = await this.#sql`
          SELECT coalesce(sum(fee), 0)::text AS fee FROM provider_requests
           WHERE provider = ${this.#provider} AND user_address = ${key} AND NOT settled`
        const sum = BigInt(r!.fee as string) + entry.since
        this.#unsettled.set(key, { sum, at: started })
        return sum
      } finally {
        this.#reading.delete(key)
      }
    })()
    this.#reading.set(key, entry)
    return entry.sum
  }

  async unsettledTotal(): Promise<bigint> {
    const [r] = await this.#sql`
      SELECT coalesce(sum(fee), 0)::text AS fee FROM provider_requests WHERE provider = ${this.#provider} AND NOT settled`
    return BigInt(r!.fee as string)
  }

  async usersWithUnsettled(): Promise<Address[]> {
    const rows = await this.#sql`
      SELECT DISTINCT user_address FROM provider_requests
       WHERE provider = ${this.#provider} AND NOT settled AND settlement_id IS NULL ORDER BY user_address`
    return rows.map((r) => r.user_address as Address)
  }

  async unsettledRecords(user: Address): Promise<UsageRecord[]> {
    const rows = await this.#sql.unsafe(
      `SELECT ${RECORD} FROM provider_requests
        WHERE provider = $1 AND user_address = $2 AND NOT settled AND settlement_id IS NULL
        ORDER BY created_at, seq`,
      [this.#provider, user.toLowerCase()],
    )
    return rows.map(toRecord)
  }

  async lastNonce(user: Address): Promise<bigint> {
    const [r] = await this.#sql`
      SELECT coalesce(max(nonce), 0)::text AS nonce FROM provider_settlements
       WHERE provider = ${this.#provider} AND user_address = ${user.toLowerCase()}`
    return BigInt(r!.nonce as string)
  }

  async beginSettlement(params: {
    user: Address
    nonce: bigint
    totalFee: bigint
    requestsHash: Hex
    resKeys: string[]
  }): Promise<number> {
    const now = Date.now()
    return this.#sql.begin(async (tx) => {
      const [row] = await tx`
        INSERT INTO provider_settlements (provider, user_address, nonce, total_fee, requests_hash, status, node,
                                          created_at, updated_at)
        VALUES (${this.#provider}, ${params.user.toLowerCase()}, ${params.nonce.toString()},
                ${params.totalFee.toString()}, ${params.requestsHash}, 'pending', ${this.#node}, ${now}, ${now})
        RETURNING id::float8 AS id`
      const id = Number(row!.id)
      if (params.resKeys.length) {
        const claimed = await tx`
          UPDATE provider_requests SET settlement_id = ${id}
           WHERE provider = ${this.#provider} AND res_key IN ${tx(params.resKeys)}
             AND NOT settled AND settlement_id IS NULL`
        // A record another claim took, or one taken back, rolls the whole claim back.
        if (claimed.count !== params.resKeys.length)
          throw new Error(
            `${params.resKeys.length - claimed.count} of ${params.resKeys.length} records are no longer free to settle`,
          )
      }
      return id
    }) as Promise<number>
  }

  async markSent(ids: number[], txHash: Hex, txNonce: number): Promise<void> {
    if (!ids.length) return
    await this.#sql`
      UPDATE provider_settlements SET status = 'sent', tx_hash = ${txHash}, tx_nonce = ${txNonce}, updated_at = ${Date.now()}
       WHERE provider = ${this.#provider} AND id IN ${this.#sql(ids)}`
  }

  async completeSettlement(id: number, detail?: string, settledKeys?: string[]): Promise<void> {
    this.#unsettled.clear()
    await this.#sql.begin(async (tx) => {
      await tx`UPDATE provider_settlements SET status = 'settled', detail = ${detail ?? null}, updated_at = ${Date.now()}
                WHERE provider = ${this.#provider} AND id = ${id}`
      if (settledKeys) {
        if (settledKeys.length)
          await tx`UPDATE provider_requests SET settled = true
                    WHERE provider = ${this.#provider} AND settlement_id = ${id} AND res_key IN ${tx(settledKeys)}`
        await tx`UPDATE provider_requests SET settlement_id = NULL
                  WHERE provider = ${this.#provider} AND settlement_id = ${id} AND NOT settled`
      } else {
        await tx`UPDATE provider_requests SET settled = true WHERE provider = ${this.#provider} AND settlement_id = ${id}`
      }
    })
  }

  async abandonSettlement(id: number, detail: string): Promise<void> {
    await this.#sql.begin(async (tx) => {
      await tx`UPDATE provider_settlements SET status = 'failed', detail = ${detail}, updated_at = ${Date.now()}
                WHERE provider = ${this.#provider} AND id = ${id}`
      await tx`UPDATE provider_requests SET settlement_id = NULL
                WHERE provider = ${this.#provider} AND settlement_id = ${id} AND NOT settled`
    })
  }

  async openSettlements(): Promise<SettlementRow[]> {
    const rows = await this.#sql.unsafe(
      `SELECT ${SETTLEMENT} FROM provider_settlements WHERE provider = $1 AND status IN ('pending', 'sent') ORDER BY id`,
      [this.#provider],
    )
    return rows.map(toSettlement)
  }

  async settlements(): Promise<SettlementRow[]> {
    const rows = await this.#sql.unsafe(
      `SELECT ${SETTLEMENT} FROM provider_settlements WHERE provider = $1 ORDER BY id`,
      [this.#provider],
    )
    return rows.map(toSettlement)
  }

  async settlementRecords(id: number): Promise<UsageRecord[]> {
    const rows = await this.#sql.unsafe(
      `SELECT ${RECORD} FROM provider_requests WHERE provider = $1 AND settlement_id = $2 ORDER BY created_at, seq`,
      [this.#provider, id],
    )
    return rows.map(toRecord)
  }

  async records(filter: { settled?: boolean } = {}): Promise<(UsageRecord & { settled: boolean })[]> {
    const rows = await this.#sql.unsafe(
      `SELECT ${RECORD}, settled FROM provider_requests
        WHERE provider = $1 AND ($2::boolean IS NULL OR settled = $2::boolean) ORDER BY created_at, seq`,
      [this.#provider, filter.settled ?? null],
    )
    return rows.map((r) => ({ ...toRecord(r), settled: r.settled === true }))
  }

  /**
   * Runs `fn` while this node holds the provider's settlement lock: a session-level advisory lock, tried (never
   * waited for) on a connection reserved for the run. Another node holding it means it is settling now: this run is
   * skipped. A holder that dies (kill -9, lost host) loses its session and the lock with it, so the next run on any
   * node takes over; what the dead one left half-done, recoverSettlements finishes from the shared rows.
   */
  async exclusively<T>(fn: () => Promise<T>): Promise<Exclusive<T>> {
    const key = `zg-provider-settlement:${this.#provider}`
    const connection = await this.#sql.reserve()
    try {
      const [r] = await connection`SELECT pg_try_advisory_lock(hashtextextended(${key}, 0)) AS locked`
      if (!r?.locked) return { ran: false }
      try {
        return { ran: true, value: await fn() }
      } finally {
        // A broken connection has already dropped the lock with its session.
        await connection`SELECT pg_advisory_unlock(hashtextextended(${key}, 0))`.catch(() => {})
      }
    } finally {
      connection.release()
    }
  }

  /** Nothing to flush: every write commits before it resolves. The pool is the caller's. */
  close(): void {}
}
