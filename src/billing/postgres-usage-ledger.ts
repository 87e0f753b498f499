import type { Address } from 'viem'
import type { Sql } from '../store/postgres/connect.ts'
import {
  type CallLedger,
  type CallRecord,
  SPEND_DIMENSIONS,
  type SpendDimension,
  type SpendRow,
  toCall,
  type VerificationStatus,
} from './usage-ledger.ts'

/** The columns as toCall() reads them (SQLite's shapes: numbers, 0/1, amounts as text). */
const CALL = `request_id, created_at::float8 AS created_at, api_key_id, provider, model, endpoint,
  stream::int AS stream, status, input_units::text AS input_units, output_units::text AS output_units,
  fee::text AS fee, res_key, latency_ms, delivered_bytes::float8 AS delivered_bytes, verification,
  verification_level, verification_detail, signed_receipt`

const SPEND_COLUMNS: Record<SpendDimension, string> = {
  key: 'api_key_id',
  model: 'model',
  provider: 'provider',
  day: "to_char(to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}

type Verification = {
  requestId: string
  status: VerificationStatus
  level: string | null
  detail: string | null
  signedReceipt: string | null
}

/** A failed commit is tried again this many times before its records are reported lost. */
const COMMIT_TRIES = 5

/**
 * The usage ledger in Postgres, shared by several gateway instances: each call's record is written by the instance
 * that served it, once (request ids are unique; a retried commit inserts nothing twice). Writes are grouped like
 * the SQLite ledger's: records made in the same turn of the event loop commit in one transaction, and commits run
 * one after another, so a receipt's update never overtakes its record's insert.
 */
export class PostgresUsageLedger implements CallLedger {
  readonly #sql: Sql
  readonly #onError: (err: Error) => void
  #calls: CallRecord[] = []
  #verifications: Verification[] = []
  #waiters: Array<() => void> = []
  #scheduled: NodeJS.Immediate | undefined
  #committing: Promise<void> = Promise.resolve()

  constructor(sql: Sql, options: { onError?: (err: Error) => void } = {}) {
    this.#sql = sql
    this.#onError = options.onError ?? ((err) => console.error(`usage ledger: ${err.message}`))
  }

  recordDurably(call: CallRecord): Promise<void> {
    this.#calls.push(call)
    return new Promise((resolve) => {
      this.#waiters.push(resolve)
      this.#schedule()
    })
  }

  setVerification(
    requestId: string,
    status: VerificationStatus,
    level: string | null,
    detail: string | null,
    signedReceipt: string | null = null,
  ): void {
    this.#verifications.push({ requestId, status, level, detail, signedReceipt })
    this.#schedule()
  }

  #schedule(): void {
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined
      void this.flush()
    })
  }

  /** Commits what is queued, after the commits before it; resolves when it is written (or reported lost). */
  flush(): Promise<void> {
    clearImmediate(this.#scheduled)
    this.#scheduled = undefined
    const calls = this.#calls
    const verifications = this.#verifications
    const waiters = this.#waiters
    this.#calls = []
    this.#verifications = []
    this.#waiters = []
    this.#committing = this.#committing.then(async () => {
      try {
        if (calls.length || verifications.length) await this.#commit(calls, verifications)
      } finally {
        // Whatever happens to the commit, no response may wait on it forever.
        for (const resolve of waiters) resolve()
      }
    })
    return this.#committing
  }

  async #commit(calls: CallRecord[], verifications: Verification[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#sql.begin(async (tx) => {
          if (calls.length) {
            await tx`INSERT INTO calls ${tx(calls.map(rowOf))} ON CONFLICT (request_id) DO NOTHING`
          }
          await Promise.all(
            verifications.map(
              (v) => tx`UPDATE calls SET verification = ${v.status}, verification_level = ${v.level},
                          verification_detail = ${v.detail}, signed_receipt = ${v.signedReceipt}
                        WHERE request_id = ${v.requestId}`,
            ),
          )
        })
        return
      } catch (err) {
        if (attempt >= COMMIT_TRIES) {
          this.#onError(
            new Error(
              `${calls.length} records and ${verifications.length} checks not written: ${(err as Error).message}`,
            ),
          )
          return
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt))
      }
    }
  }

  async get(requestId: string): Promise<CallRecord | undefined> {
    await this.flush()
    const [row] = await this.#sql.unsafe(`SELECT ${CALL} FROM calls WHERE request_id = $1`, [requestId])
    return row && toCall(row)
  }

  async calls(params: { since?: number; limit?: number } = {}): Promise<CallRecord[]> {
    await this.flush()
    const rows = await this.#sql.unsafe(
      `SELECT ${CALL} FROM calls WHERE created_at >= $1 ORDER BY created_at DESC LIMIT $2`,
      [params.since ?? 0, params.limit ?? 1000],
    )
    return rows.map(toCall)
  }

  async feesByProvider(): Promise<Array<{ provider: Address; calls: number; fee: bigint; verifiedFee: bigint }>> {
    await this.flush()
    const rows = await this.#sql`
      SELECT provider, count(*)::int AS calls, sum(fee)::text AS fee,
             coalesce(sum(fee) FILTER (WHERE verification = 'verified'), 0)::text AS verified_fee
        FROM calls GROUP BY provider ORDER BY provider`
    return rows.map((r) => ({
      provider: r.provider as Address,
      calls: Number(r.calls),
      fee: BigInt(r.fee as string),
      verifiedFee: BigInt(r.verified_fee as string),
    }))
  }

  async spend(params: { since?: number; by?: readonly SpendDimension[] } = {}): Promise<SpendRow[]> {
    await this.flush()
    const by = SPEND_DIMENSIONS.filter((d) => params.by?.includes(d))
    const columns = by.map((d) => `${SPEND_COLUMNS[d]} AS ${d}, `).join('')
    const group = by.length ? `GROUP BY ${by.join(', ')} ORDER BY ${by.join(', ')}` : ''
    const rows = await this.#sql.unsafe(
      `SELECT ${columns} count(*)::int AS calls, coalesce(sum(fee), 0)::text AS fee,
              (count(*) FILTER (WHERE verification = 'verified'))::int AS verified,
              coalesce(sum(fee) FILTER (WHERE verification = 'verified'), 0)::text AS verified_fee,
              (count(*) FILTER (WHERE verification IN ('unverified', 'disputed')))::int AS failed
         FROM calls WHERE created_at >= $1 ${group}`,
      [params.since ?? 0],
    )
    return rows
      .filter((r) => Number(r.calls) > 0)
      .map((r) => ({
        ...Object.fromEntries(by.map((d) => [d, (r[d] as string | null) ?? null])),
        calls: Number(r.calls),
        fee: BigInt(r.fee as string),
        verified: Number(r.verified),
        verifiedFee: BigInt(r.verified_fee as string),
        failed: Number(r.failed),
      }))
  }

  async markResumed(provider: Address, at: number): Promise<void> {
    await this.#sql`INSERT INTO provider_resumes (provider, resumed_at) VALUES (${provider.toLowerCase()}, ${at})
                    ON CONFLICT (provider) DO UPDATE SET resumed_at = excluded.resumed_at`
  }

  async resumes(): Promise<Map<string, number>> {
    const rows = await this.#sql`SELECT provider, resumed_at::float8 AS resumed_at FROM provider_resumes`
    return new Map(rows.map((r) => [String(r.provider), Number(r.resumed_at)]))
  }

  /** Commits what is left; the pool is the caller's to close. */
  async close(): Promise<void> {
    await this.flush()
  }
}

function rowOf(call: CallRecord) {
  return {
    request_id: call.requestId,
    created_at: call.createdAt,
    api_key_id: call.apiKeyId,
    provider: call.provider.toLowerCase(),
    model: call.model,
    endpoint: call.endpoint,
    stream: call.stream,
    status: call.status,
    input_units: call.inputUnits.toString(),
    output_units: call.outputUnits.toString(),
    fee: call.fee.toString(),
    res_key: call.resKey,
    latency_ms: call.latencyMs,
    delivered_bytes: call.deliveredBytes,
    verification: call.verification,
    verification_level: call.verificationLevel,
    verification_detail: call.verificationDetail,
    signed_receipt: call.signedReceipt ?? null,
  }
}
