import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { Address } from 'viem'

/** What the gateway could establish about one delivered response. */
export type VerificationStatus = 'pending' | 'verified' | 'unverified' | 'disputed' | 'unverifiable'

/** One proxied call, as the gateway meters it. */
export type CallRecord = {
  requestId: string
  createdAt: number
  apiKeyId: string | null
  provider: Address
  model: string
  endpoint: string
  stream: boolean
  status: number
  inputUnits: bigint
  outputUnits: bigint
  /** The fee the provider is owed for it by its prices and the usage it reported, in neuron. */
  fee: bigint
  resKey: string | null
  latencyMs: number
  /** Bytes the client received: the whole answer, or what reached it before a stream was cut short. */
  deliveredBytes: number
  verification: VerificationStatus
  verificationLevel: string | null
  verificationDetail: string | null
  /** The gateway's signed receipt of the check (JSON of a SignedReceipt), once the check is done. */
  signedReceipt?: string | null
}

type Row = Record<string, string | number | null>

/** What spend can be grouped by. */
export const SPEND_DIMENSIONS = ['key', 'model', 'provider', 'day'] as const
export type SpendDimension = (typeof SPEND_DIMENSIONS)[number]
const SPEND_COLUMNS: Record<SpendDimension, string> = {
  key: 'api_key_id',
  model: 'model',
  provider: 'provider',
  day: "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
}

/** One group of spend: its dimensions' values, then totals (fees in neuron). */
export type SpendRow = Partial<Record<SpendDimension, string | null>> & {
  calls: number
  fee: bigint
  /** Calls whose delivery verified, and their fee. */
  verified: number
  verifiedFee: bigint
  /** Calls whose check failed (unverified or disputed). */
  failed: number
}

export const toCall = (r: Row): CallRecord => ({
  requestId: r.request_id as string,
  createdAt: r.created_at as number,
  apiKeyId: (r.api_key_id as string | null) ?? null,
  provider: r.provider as Address,
  model: r.model as string,
  endpoint: r.endpoint as string,
  stream: r.stream === 1,
  status: r.status as number,
  inputUnits: BigInt(r.input_units as string),
  outputUnits: BigInt(r.output_units as string),
  fee: BigInt(r.fee as string),
  resKey: (r.res_key as string | null) ?? null,
  latencyMs: r.latency_ms as number,
  deliveredBytes: (r.delivered_bytes as number | null) ?? 0,
  verification: r.verification as VerificationStatus,
  verificationLevel: (r.verification_level as string | null) ?? null,
  verificationDetail: (r.verification_detail as string | null) ?? null,
  signedReceipt: (r.signed_receipt as string | null) ?? null,
})

type Awaitable<T> = T | Promise<T>

/**
 * What the gateway asks of its usage ledger: this file's SQLite one (one machine) or the Postgres one
 * (postgres-usage-ledger.ts), shared by several instances.
 */
export interface CallLedger {
  /** Resolves once the record is committed: the answer's last bytes wait for it. */
  recordDurably(call: CallRecord): Promise<void>
  setVerification(
    requestId: string,
    status: VerificationStatus,
    level: string | null,
    detail: string | null,
    signedReceipt?: string | null,
  ): void
  get(requestId: string): Awaitable<CallRecord | undefined>
  calls(params?: { since?: number; limit?: number }): Awaitable<CallRecord[]>
  feesByProvider(): Awaitable<Array<{ provider: Address; calls: number; fee: bigint; verifiedFee: bigint }>>
  spend(params?: { since?: number; by?: readonly SpendDimension[] }): Awaitable<SpendRow[]>
  markResumed(provider: Address, at: number): Awaitable<void>
  resumes(): Awaitable<Map<string, number>>
  close(): Awaitable<void>
}

/**
 * The gateway's own record of every proxied call and its verification receipt (node:sqlite, WAL). It is what
 * `zg-gateway usage` reports and what the escrow policy funds from: only verified fees are replenished.
 *
 * Writes are group-committed: the ones made within {@link UsageLedger.GROUP_MS} commit together, one transaction
 * instead of one each. A commit writes every b-tree page it touched to the WAL (the table and its two indexes,
 * for one row), and every thousand pages a checkpoint fsyncs; alone, two commits a call (the record, then its
 * receipt) cost more CPU than the rest of the gateway's bookkeeping. Reads in this process commit first, so they
 * see everything, and `close()` commits what is left. What a crash can lose is the last few milliseconds of records;
 * the fees themselves are the provider's to record and the chain's to settle.
 */
export class UsageLedger implements CallLedger {
  readonly #db: DatabaseSync
  readonly #insert: StatementSync
  readonly #verify: StatementSync
  readonly #get: StatementSync
  readonly #onError: (err: Error) => void
  readonly #whenIdle: (commit: () => void) => void
  #queue: Array<() => void> = []
  #flushScheduled: NodeJS.Timeout | undefined
  /** Callers of recordDurably() waiting for the commit that holds their record. */
  #durableWaiters: Array<() => void> = []
  #durableScheduled: NodeJS.Immediate | undefined

  /** How long a write may wait for others to commit with it, in ms. */
  static readonly GROUP_MS = 25
  /** A group this large commits at once. */
  static readonly GROUP_MAX = 512

  /**
   * `onError` hears of a write that failed (it is dropped; the others in its group are kept). `whenIdle` is where a
   * group due to commit waits for a moment when no client is waiting on this process (the gateway passes its
   * off-path queue); by default it commits when due.
   */
  constructor(path: string, options: { onError?: (err: Error) => void; whenIdle?: (commit: () => void) => void } = {}) {
    this.#onError = options.onError ?? ((err) => console.error(`usage ledger: ${err.message}`))
    this.#whenIdle = options.whenIdle ?? ((commit) => commit())
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    this.#db = new DatabaseSync(path)
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS calls (
        request_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        api_key_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        stream INTEGER NOT NULL,
        status INTEGER NOT NULL,
        input_units TEXT NOT NULL,
        output_units TEXT NOT NULL,
        fee TEXT NOT NULL,
        res_key TEXT,
        latency_ms INTEGER NOT NULL,
        verification TEXT NOT NULL,
        verification_level TEXT,
        verification_detail TEXT
      );
      CREATE INDEX IF NOT EXISTS calls_by_time ON calls (created_at);
      CREATE INDEX IF NOT EXISTS calls_by_provider ON calls (provider, verification);
      CREATE TABLE IF NOT EXISTS provider_resumes (provider TEXT PRIMARY KEY, resumed_at INTEGER NOT NULL);
    `)
    // Added after the first release: a ledger written before it gains the column (its old rows read as 0).
    const columns = this.#db.prepare('PRAGMA table_info(calls)').all() as Array<{ name: string }>
    if (!columns.some((c) => c.name === 'delivered_bytes'))
      this.#db.exec('ALTER TABLE calls ADD COLUMN delivered_bytes INTEGER')
    if (!columns.some((c) => c.name === 'signed_receipt'))
      this.#db.exec('ALTER TABLE calls ADD COLUMN signed_receipt TEXT')
    this.#insert = this.#db.prepare(
      `INSERT OR REPLACE INTO calls (request_id, created_at, api_key_id, provider, model, endpoint, stream, status,
         input_units, output_units, fee, res_key, latency_ms, verification, verification_level, verification_detail,
         delivered_bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.#verify = this.#db.prepare(
      'UPDATE calls SET verification = ?, verification_level = ?, verification_detail = ?, signed_receipt = ? WHERE request_id = ?',
    )
    this.#get = this.#db.prepare('SELECT * FROM calls WHERE request_id = ?')
  }

  #write(op: () => void): void {
    this.#queue.push(op)
    if (this.#queue.length >= UsageLedger.GROUP_MAX) this.flush()
    // Writes arriving while a due group waits for its moment join it.
    else this.#flushScheduled ??= setTimeout(() => this.#whenIdle(() => this.flush()), UsageLedger.GROUP_MS).unref()
  }

  /** Commits the queued writes now (reads and `close()` do this first). */
  flush(): void {
    clearTimeout(this.#flushScheduled)
    this.#flushScheduled = undefined
    clearImmediate(this.#durableScheduled)
    this.#durableScheduled = undefined
    const ops = this.#queue
    const waiters = this.#durableWaiters
    this.#durableWaiters = []
    // Whatever happens to the commit, no response may wait on it forever.
    try {
      this.#commit(ops)
    } finally {
      for (const resolve of waiters) resolve()
    }
  }

  #commit(ops: Array<() => void>): void {
    if (!ops.length) return
    this.#queue = []
    this.#db.exec('BEGIN')
    try {
      for (const op of ops) op()
      this.#db.exec('COMMIT')
      return
    } catch {
      this.#db.exec('ROLLBACK')
    }
    // One bad write must not take the others with it: again, one at a time.
    for (const op of ops) {
      try {
        op()
      } catch (err) {
        this.#onError(err as Error)
      }
    }
  }

  record(call: CallRecord): void {
    this.#write(() => this.#insertCall(call))
  }

  /**
   * Records `call` and resolves once it is committed: the gateway awaits this before the last bytes of an answer
   * leave, so an answer a client received has its record even if the process is killed right after. The commit is
   * one for every call recorded in the same turn of the event loop (and any other queued write), not one per call.
   * WAL with synchronous=NORMAL: a commit survives the process being killed (not a power loss).
   */
  recordDurably(call: CallRecord): Promise<void> {
    this.#queue.push(() => this.#insertCall(call))
    return new Promise((resolve) => {
      this.#durableWaiters.push(resolve)
      this.#durableScheduled ??= setImmediate(() => this.flush())
    })
  }

  #insertCall(call: CallRecord): void {
    this.#insert.run(
      call.requestId,
      call.createdAt,
      call.apiKeyId,
      call.provider.toLowerCase(),
      call.model,
      call.endpoint,
      call.stream ? 1 : 0,
      call.status,
      call.inputUnits.toString(),
      call.outputUnits.toString(),
      call.fee.toString(),
      call.resKey,
      call.latencyMs,
      call.verification,
      call.verificationLevel,
      call.verificationDetail,
      call.deliveredBytes,
    )
  }

  setVerification(
    requestId: string,
    status: VerificationStatus,
    level: string | null,
    detail: string | null,
    signedReceipt: string | null = null,
  ): void {
    this.#write(() => this.#verify.run(status, level, detail, signedReceipt, requestId))
  }

  get(requestId: string): CallRecord | undefined {
    this.flush()
    const row = this.#get.get(requestId) as Row | undefined
    return row ? toCall(row) : undefined
  }

  /** Calls in a time window, newest first. */
  calls(params: { since?: number; limit?: number } = {}): CallRecord[] {
    this.flush()
    const rows = this.#db
      .prepare('SELECT * FROM calls WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?')
      .all(params.since ?? 0, params.limit ?? 1000) as Row[]
    return rows.map(toCall)
  }

  /** Totals per provider and model since `since` (ms). */
  summary(
    since = 0,
  ): Array<{ provider: Address; model: string; calls: number; fee: bigint; verified: number; failed: number }> {
    this.flush()
    const rows = this.#db
      .prepare(
        `SELECT provider, model, COUNT(*) AS calls,
                SUM(CASE WHEN verification = 'verified' THEN 1 ELSE 0 END) AS verified,
                SUM(CASE WHEN verification IN ('unverified', 'disputed') THEN 1 ELSE 0 END) AS failed,
                GROUP_CONCAT(fee) AS fees
           FROM calls WHERE created_at >= ? GROUP BY provider, model ORDER BY provider, model`,
      )
      .all(since) as Row[]
    return rows.map((r) => ({
      provider: r.provider as Address,
      model: r.model as string,
      calls: r.calls as number,
      verified: r.verified as number,
      failed: r.failed as number,
      fee: String(r.fees ?? '')
        .split(',')
        .filter(Boolean)
        .reduce((s, f) => s + BigInt(f), 0n),
    }))
  }

  /** Every call's fee per provider (lower-case), all of them and the verified ones: what reconciliation compares. */
  feesByProvider(): Array<{ provider: Address; calls: number; fee: bigint; verifiedFee: bigint }> {
    this.flush()
    const rows = this.#db
      .prepare(
        `SELECT provider, verification = 'verified' AS verified, COUNT(*) AS calls, GROUP_CONCAT(fee) AS fees
           FROM calls GROUP BY provider, verified ORDER BY provider`,
      )
      .all() as Row[]
    const byProvider = new Map<string, { provider: Address; calls: number; fee: bigint; verifiedFee: bigint }>()
    for (const r of rows) {
      // Summed as bigints: SQLite's SUM would go through 64-bit integers or doubles.
      const fee = String(r.fees ?? '')
        .split(',')
        .filter(Boolean)
        .reduce((s, f) => s + BigInt(f), 0n)
      const key = r.provider as string
      const entry = byProvider.get(key) ?? { provider: key as Address, calls: 0, fee: 0n, verifiedFee: 0n }
      entry.calls += r.calls as number
      entry.fee += fee
      if (r.verified === 1) entry.verifiedFee += fee
      byProvider.set(key, entry)
    }
    return [...byProvider.values()]
  }

  /**
   * Spend since `since` (ms), grouped by the dimensions in `by` (none: one total row): calls and fee, and how much
   * of each verified. A day is a UTC date (YYYY-MM-DD); a call made without an API key id has key null.
   */
  spend(params: { since?: number; by?: readonly SpendDimension[] } = {}): SpendRow[] {
    this.flush()
    const by = SPEND_DIMENSIONS.filter((d) => params.by?.includes(d))
    const columns = by.map((d) => `${SPEND_COLUMNS[d]} AS ${d}`)
    const group = by.length ? `GROUP BY ${by.join(', ')}, verified ORDER BY ${by.join(', ')}` : 'GROUP BY verified'
    const rows = this.#db
      .prepare(
        `SELECT ${[...columns, ''].join(', ')} verification = 'verified' AS verified, COUNT(*) AS calls,
                SUM(CASE WHEN verification IN ('unverified', 'disputed') THEN 1 ELSE 0 END) AS failed,
                GROUP_CONCAT(fee) AS fees
           FROM calls WHERE created_at >= ? ${group}`,
      )
      .all(params.since ?? 0) as Row[]
    const out = new Map<string, SpendRow>()
    for (const r of rows) {
      const id = JSON.stringify(by.map((d) => r[d]))
      const row: SpendRow = out.get(id) ?? {
        ...Object.fromEntries(by.map((d) => [d, r[d] ?? null])),
        calls: 0,
        fee: 0n,
        verified: 0,
        verifiedFee: 0n,
        failed: 0,
      }
      // Summed as bigints: SQLite's SUM would go through 64-bit integers or doubles.
      const fee = String(r.fees ?? '')
        .split(',')
        .filter(Boolean)
        .reduce((s, f) => s + BigInt(f), 0n)
      row.calls += r.calls as number
      row.fee += fee
      row.failed += r.failed as number
      if (r.verified === 1) {
        row.verified += r.calls as number
        row.verifiedFee += fee
      }
      out.set(id, row)
    }
    return [...out.values()]
  }

  /** An operator resumed a provider stopped for its disputes: checks before `at` no longer count against it. */
  markResumed(provider: Address, at: number): void {
    this.#db
      .prepare('INSERT OR REPLACE INTO provider_resumes (provider, resumed_at) VALUES (?, ?)')
      .run(provider.toLowerCase(), at)
  }

  /** When each resumed provider was last resumed (lower-case address to epoch ms). */
  resumes(): Map<string, number> {
    const rows = this.#db.prepare('SELECT provider, resumed_at FROM provider_resumes').all() as Row[]
    return new Map(rows.map((r) => [String(r.provider), Number(r.resumed_at)]))
  }

  close(): void {
    this.flush()
    this.#db.close()
  }
}
