import { PostgresBudgets } from '../../billing/postgres-budgets.ts'
import type { Sql, TransactionSql } from '../../store/postgres/connect.ts'
import {
  type ApiKeyIdentity,
  type ApiKeyInfo,
  type ApiKeyStoreOptions,
  type CreatedApiKey,
  type KeyRow,
  type KeySettings,
  type KeyStore,
  keyInfo,
  newKey,
  refusalOf,
  settingsColumns,
  sha256,
  VerifiedKeys,
} from './api-keys.ts'

/** The columns as api-keys.ts reads them: JSON as text, booleans as 0/1, amounts as text, times as numbers. */
const ROW = `id, name, prefix, key_hash, created_at::float8 AS created_at, last_used_at::float8 AS last_used_at,
  revoked_at::float8 AS revoked_at, metadata::text AS metadata, expires_at::float8 AS expires_at,
  allowed_models::text AS allowed_models, min_verification, tee_only::int AS tee_only, timeouts::text AS timeouts,
  routing::text AS routing, budget::text AS budget, budget_period, spent::text AS spent,
  period_start::float8 AS period_start, rpm, tpm`

/**
 * Columns stored as jsonb, numeric or boolean: settingsColumns() gives them as JSON text, decimal text and 0/1. The
 * parameter is declared text first: a parameter the server takes for jsonb, the client would encode as JSON again.
 */
const CASTS: Record<string, string> = {
  metadata: '::text::jsonb',
  allowed_models: '::text::jsonb',
  timeouts: '::text::jsonb',
  routing: '::text::jsonb',
  budget: '::text::numeric',
  tee_only: '::int::boolean',
}

/** Every instance hears of a key changed, rotated or revoked on this channel (the payload is the key's id). */
export const KEY_CHANGES_CHANNEL = 'zg_api_keys'

/**
 * The API keys in Postgres, shared by several gateway instances. A verified key is remembered for the cache TTL
 * like the SQLite store; a change to a key (revoked, rotated, its policy) is announced with NOTIFY in the
 * transaction that makes it, and every instance forgets that key when it hears it: a revocation bites everywhere
 * within the notification's delay. If the listening connection drops, everything remembered is forgotten when it
 * is back, since a notification may have been missed.
 */
export class PostgresApiKeyStore implements KeyStore {
  readonly #sql: Sql
  readonly #keys: VerifiedKeys
  readonly budgets: PostgresBudgets
  #listening: Promise<unknown> | undefined

  /**
   * `budgetSql`: the pool budgets are kept on (default `sql`); the gateway gives them one whose commits do not wait
   * for the disk, since every call of a busy key queues on its row for its reservation's commit.
   */
  constructor(sql: Sql, options: ApiKeyStoreOptions & { budgetSql?: Sql } = {}) {
    this.#sql = sql
    this.#keys = new VerifiedKeys(options)
    this.budgets = new PostgresBudgets(options.budgetSql ?? sql, () => this.#keys.now())
  }

  /** Starts listening for other instances' key changes; resolves once LISTEN is in place. */
  async listen(): Promise<void> {
    this.#listening ??= this.#sql.listen(
      KEY_CHANGES_CHANNEL,
      (id) => this.#keys.forget(id),
      () => this.#keys.forget(),
    )
    await this.#listening
  }

  async create(name: string, settings: KeySettings = {}): Promise<CreatedApiKey> {
    const columns = settingsColumns(settings)
    const k = newKey()
    const createdAt = this.#keys.now()
    await this.#sql.begin(async (tx) => {
      await tx`INSERT INTO api_keys (id, name, prefix, key_hash, created_at)
               VALUES (${k.id}, ${name}, ${k.prefix}, ${k.hash}, ${createdAt})`
      if (columns.length) await this.#update(tx, k.id, columns)
    })
    return { id: k.id, key: k.key, name, createdAt: new Date(createdAt).toISOString() }
  }

  async list(): Promise<ApiKeyInfo[]> {
    const rows = await this.#sql.unsafe<KeyRow[]>(`SELECT ${ROW} FROM api_keys ORDER BY created_at, id`)
    return Promise.all(rows.map(async (row) => keyInfo(row, await this.budgets.state(row.id))))
  }

  async get(id: string): Promise<ApiKeyInfo | undefined> {
    const [row] = await this.#sql.unsafe<KeyRow[]>(`SELECT ${ROW} FROM api_keys WHERE id = $1`, [id])
    return row && keyInfo(row, await this.budgets.state(row.id))
  }

  async update(id: string, settings: KeySettings): Promise<ApiKeyInfo | undefined> {
    const columns = settingsColumns(settings)
    if (columns.length) await this.#sql.begin((tx) => this.#update(tx, id, columns))
    this.#keys.forget(id)
    return this.get(id)
  }

  async #update(tx: TransactionSql, id: string, columns: [string, string | number | null][]): Promise<void> {
    const set = columns.map(([c], i) => `${c} = $${i + 1}${CASTS[c] ?? ''}`).join(', ')
    await tx.unsafe(`UPDATE api_keys SET ${set} WHERE id = $${columns.length + 1}`, [...columns.map(([, v]) => v), id])
    await tx`SELECT pg_notify(${KEY_CHANGES_CHANNEL}, ${id})`
  }

  async rotate(id: string): Promise<CreatedApiKey | undefined> {
    const k = newKey()
    const rotated = await this.#sql.begin(async (tx) => {
      const rows = await tx`UPDATE api_keys SET key_hash = ${k.hash}, prefix = ${k.prefix}
                            WHERE id = ${id} AND revoked_at IS NULL RETURNING name, created_at::float8 AS created_at`
      if (rows.length) await tx`SELECT pg_notify(${KEY_CHANGES_CHANNEL}, ${id})`
      return rows[0]
    })
    this.#keys.forget(id)
    if (!rotated) return undefined
    return { id, key: k.key, name: String(rotated.name), createdAt: new Date(Number(rotated.created_at)).toISOString() }
  }

  async revoke(id: string): Promise<boolean> {
    const revoked = await this.#sql.begin(async (tx) => {
      const rows = await tx`UPDATE api_keys SET revoked_at = ${this.#keys.now()}
                            WHERE id = ${id} AND revoked_at IS NULL RETURNING id`
      if (rows.length) await tx`SELECT pg_notify(${KEY_CHANGES_CHANNEL}, ${id})`
      return rows.length > 0
    })
    this.#keys.forget(id)
    return revoked
  }

  addStaticKey(key: string, name: string): ApiKeyIdentity {
    return this.#keys.addStatic(key, name)
  }

  async verify(key: string): Promise<ApiKeyIdentity | undefined> {
    const known = this.#keys.known(key)
    let identity = known.identity
    if (!identity && known.hash) {
      const [row] = await this.#sql.unsafe<KeyRow[]>(`SELECT ${ROW} FROM api_keys WHERE key_hash = $1`, [
        known.hash.toString('hex'),
      ])
      identity = this.#keys.admit(key, known.hash, row)
    }
    if (identity && this.#keys.touchDue(identity)) {
      // Last use is bookkeeping: written in the background, never waited for.
      this.#sql`UPDATE api_keys SET last_used_at = ${this.#keys.now()} WHERE id = ${identity.id}`.catch(() => {})
    }
    return identity
  }

  async refusal(key: string): Promise<'expired' | 'revoked' | undefined> {
    const [row] = await this.#sql.unsafe<KeyRow[]>(`SELECT ${ROW} FROM api_keys WHERE key_hash = $1`, [
      sha256(key).toString('hex'),
    ])
    return refusalOf(row, this.#keys.now())
  }

  /** The connection pool is the caller's (shared by the stores of one process): it closes it. */
  close(): void {}
}
