import { hash as digest, randomBytes, timingSafeEqual } from 'node:crypto'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { LRUCache } from 'lru-cache'
import { isLevel, type VerificationLevel } from '../../attestation/levels.ts'
import {
  BUDGET_PERIODS,
  type BudgetPeriod,
  type BudgetState,
  type Budgets,
  SqliteBudgets,
} from '../../billing/budgets.ts'
import type { RoutingControls } from '../../providers/ranking.ts'
import type { KeyTimeouts } from '../upstream-limits.ts'

/** Who a verified key belongs to; what request handlers and the usage ledger see. */
export type ApiKeyIdentity = { id: string; name: string; policy?: KeyPolicy }

export type MinVerification = VerificationLevel

/** What a key may do: enforced by src/gateway/key-admission.ts. */
export type KeyPolicy = {
  expiresAt: number | null
  /** Model names as clients send them (an alias counts by its own name); empty: all. */
  allowedModels: string[]
  minVerification: MinVerification
  /** Only providers that run the model inside a TEE (0G Router's privacy mode). */
  teeOnly: boolean
  /** The key's own provider timeouts (first byte, total, idle), over the gateway's; null: the gateway's. */
  timeouts: KeyTimeouts | null
  /** Routing defaults (pin, sort, fallbacks, price ceilings) its calls' headers override; null: none. */
  routing: Partial<RoutingControls> | null
  /** Neuron per period (or in all), null: unlimited. */
  budget: bigint | null
  budgetPeriod: BudgetPeriod | null
  rpm: number | null
  tpm: number | null
}

/** The settable part of a key (create and update). */
export type KeySettings = Partial<KeyPolicy> & { name?: string; metadata?: Record<string, unknown> }

/** A freshly created key. `key` is shown this once: only its hash is kept. */
export type CreatedApiKey = { id: string; key: string; name: string; createdAt: string }

export type ApiKeyInfo = {
  id: string
  name: string
  /** The key's first 8 characters, enough to tell keys apart in a listing and useless for guessing. */
  prefix: string
  createdAt: string
  lastUsedAt: string | null
  revokedAt: string | null
  metadata: Record<string, unknown>
  expiresAt: string | null
  allowedModels: string[]
  minVerification: MinVerification
  teeOnly: boolean
  timeouts: KeyTimeouts | null
  routing: Record<string, unknown> | null
  /** Neuron, as decimal text. */
  budget: string | null
  budgetPeriod: BudgetPeriod | null
  /** Spent in the current period (neuron text), and held for calls in flight. */
  spent: string
  reserved: string
  rpm: number | null
  tpm: number | null
}

export type ApiKeyStoreOptions = {
  /**
   * How long a verified key is trusted without asking the database (nor hashing it again: it is remembered, in this
   * process's memory only): the delay before a revocation by another process bites.
   */
  cacheTtlMs?: number
  /** `lastUsedAt` is written at most this often per key, so the hot path rarely writes. */
  touchIntervalMs?: number
  now?: () => number
}

type Awaitable<T> = T | Promise<T>

/**
 * What the gateway asks of a key store: the SQLite one below (one machine) or the Postgres one
 * (postgres-api-keys.ts, several instances). `verify` is on every request's path: a recently verified key is
 * answered from memory by both.
 */
export interface KeyStore {
  readonly budgets: Budgets
  create(name: string, settings?: KeySettings): Awaitable<CreatedApiKey>
  list(): Awaitable<ApiKeyInfo[]>
  get(id: string): Awaitable<ApiKeyInfo | undefined>
  update(id: string, settings: KeySettings): Awaitable<ApiKeyInfo | undefined>
  rotate(id: string): Awaitable<CreatedApiKey | undefined>
  revoke(id: string): Awaitable<boolean>
  addStaticKey(key: string, name: string): ApiKeyIdentity
  verify(key: string): Awaitable<ApiKeyIdentity | undefined>
  refusal(key: string): Awaitable<'expired' | 'revoked' | undefined>
  close(): Awaitable<void>
}

export const API_KEY_PREFIX = 'sk-zg-'
const STATIC_ID_PREFIX = 'static_'
const RANDOM_CHARS = 32
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** A key's row, as both stores read it (JSON columns as text, booleans as 0/1). */
export type KeyRow = {
  id: string
  name: string
  prefix: string
  key_hash: string
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
  metadata: string
  expires_at: number | null
  allowed_models: string
  min_verification: string
  tee_only: number
  timeouts: string | null
  routing: string | null
  budget: string | null
  budget_period: string | null
  spent: string
  period_start: number | null
  rpm: number | null
  tpm: number | null
}

/** Columns added after the first schema: added to an existing database by the migration in the constructor. */
const POLICY_COLUMNS: Record<string, string> = {
  metadata: "TEXT NOT NULL DEFAULT '{}'",
  expires_at: 'INTEGER',
  allowed_models: "TEXT NOT NULL DEFAULT '[]'",
  min_verification: "TEXT NOT NULL DEFAULT 'none'",
  tee_only: 'INTEGER NOT NULL DEFAULT 0',
  timeouts: 'TEXT',
  routing: 'TEXT',
  budget: 'TEXT',
  budget_period: 'TEXT',
  spent: "TEXT NOT NULL DEFAULT '0'",
  period_start: 'INTEGER',
  rpm: 'INTEGER',
  tpm: 'INTEGER',
}

/**
 * What both stores remember in this process: keys verified lately (so the hot path neither hashes nor asks the
 * database), keys from the configuration (hashes in memory only), and when each key's last use was written.
 */
export class VerifiedKeys {
  readonly #now: () => number
  readonly #touchIntervalMs: number
  readonly #verified: LRUCache<string, ApiKeyIdentity>
  readonly #touchedAt = new Map<string, number>()
  readonly #static: { hash: Buffer; identity: ApiKeyIdentity }[] = []

  constructor(options: ApiKeyStoreOptions = {}) {
    this.#now = options.now ?? Date.now
    this.#touchIntervalMs = options.touchIntervalMs ?? 60_000
    this.#verified = new LRUCache({ max: 10_000, ttl: options.cacheTtlMs ?? 10_000 })
  }

  now(): number {
    return this.#now()
  }

  /**
   * The key's identity when it is known without the database: verified within the TTL (and not expired since), or
   * configured. `hash` is filled in when the key had to be hashed, for the database lookup that follows.
   */
  known(key: string): { identity?: ApiKeyIdentity; hash?: Buffer } {
    // A key verified within the TTL is known by itself, in memory only: hashing it again (a cold call into OpenSSL,
    // some 40 µs of a request run one at a time) would only say what was said a moment ago.
    const cached = this.#verified.get(key)
    if (cached?.policy?.expiresAt != null && cached.policy.expiresAt <= this.#now()) return {}
    if (cached) return { identity: cached }
    const hash = sha256(key)
    for (const entry of this.#static) {
      if (timingSafeEqual(entry.hash, hash)) {
        this.#verified.set(key, entry.identity)
        return { identity: entry.identity }
      }
    }
    return { hash }
  }

  /** The identity of a stored row whose hash matched, or undefined when it is revoked or expired. */
  admit(key: string, hash: Buffer, row: KeyRow | undefined): ApiKeyIdentity | undefined {
    if (!row || row.revoked_at !== null) return undefined
    // Looking the row up by hash leaks at most how much of a sha256 matched, which says nothing about the key; this
    // comparison is the constant-time check that decides.
    if (!timingSafeEqual(Buffer.from(row.key_hash, 'hex'), hash)) return undefined
    const policy = policyOf(row)
    if (policy.expiresAt !== null && policy.expiresAt <= this.#now()) return undefined
    const identity = { id: row.id, name: row.name, policy }
    this.#verified.set(key, identity)
    return identity
  }

  /** True when the key's last use is due to be written (at most once per interval per key). */
  touchDue(identity: ApiKeyIdentity): boolean {
    if (identity.id.startsWith(STATIC_ID_PREFIX)) return false
    const now = this.#now()
    const last = this.#touchedAt.get(identity.id)
    if (last !== undefined && now - last < this.#touchIntervalMs) return false
    this.#touchedAt.set(identity.id, now)
    return true
  }

  addStatic(key: string, name: string): ApiKeyIdentity {
    const hash = sha256(key)
    const identity = { id: `${STATIC_ID_PREFIX}${hash.subarray(0, 6).toString('hex')}`, name }
    this.#static.push({ hash, identity })
    return identity
  }

  /** Forgets what was verified of key `id` (changed, rotated, revoked); every key when no id is given. */
  forget(id?: string): void {
    if (id === undefined) {
      this.#verified.clear()
      return
    }
    for (const [key, identity] of this.#verified.entries()) {
      if (identity.id === id) this.#verified.delete(key)
    }
  }
}

/** A new key's secret, id and stored form. */
export function newKey(): { key: string; id: string; prefix: string; hash: string } {
  const key = API_KEY_PREFIX + randomBase62(RANDOM_CHARS)
  return {
    key,
    id: `key_${randomBytes(8).toString('hex')}`,
    prefix: key.slice(0, 8),
    hash: sha256(key).toString('hex'),
  }
}

/** The columns a settings change writes (checked first): undefined fields stay, null clears. */
export function settingsColumns(settings: KeySettings): [string, string | number | null][] {
  checkSettings(settings)
  const columns: [string, string | number | null][] = []
  const set = (column: string, value: string | number | null | undefined) => {
    if (value !== undefined) columns.push([column, value])
  }
  const json = (v: unknown, text: (v: never) => string = JSON.stringify) =>
    v === undefined ? undefined : v === null ? null : text(v as never)
  set('name', settings.name)
  set('metadata', json(settings.metadata))
  set('expires_at', settings.expiresAt)
  set('allowed_models', json(settings.allowedModels))
  set('min_verification', settings.minVerification)
  set('tee_only', settings.teeOnly === undefined ? undefined : settings.teeOnly ? 1 : 0)
  set('routing', json(settings.routing, routingJson))
  set('timeouts', json(settings.timeouts))
  set(
    'budget',
    json(settings.budget, (b: bigint) => b.toString()),
  )
  set('budget_period', settings.budgetPeriod)
  set('rpm', settings.rpm)
  set('tpm', settings.tpm)
  return columns
}

/** A key as listings show it: its row, and its budget's state now. */
export function keyInfo(row: KeyRow, budget: BudgetState | undefined): ApiKeyInfo {
  const policy = policyOf(row)
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    createdAt: iso(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : iso(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : iso(row.revoked_at),
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    expiresAt: policy.expiresAt === null ? null : iso(policy.expiresAt),
    allowedModels: policy.allowedModels,
    minVerification: policy.minVerification,
    teeOnly: policy.teeOnly,
    timeouts: policy.timeouts,
    routing: row.routing ? (JSON.parse(row.routing) as Record<string, unknown>) : null,
    budget: row.budget,
    budgetPeriod: policy.budgetPeriod,
    spent: (budget?.spent ?? 0n).toString(),
    reserved: (budget?.reserved ?? 0n).toString(),
    rpm: row.rpm,
    tpm: row.tpm,
  }
}

/** Why a key that failed verification is refused, from its row: for the 401's message. */
export function refusalOf(row: KeyRow | undefined, now: number): 'expired' | 'revoked' | undefined {
  if (!row) return undefined
  if (row.revoked_at !== null) return 'revoked'
  return row.expires_at !== null && row.expires_at <= now ? 'expired' : undefined
}

/**
 * The gateway's API keys in SQLite. Keys are stored as sha256 hashes only, so a copied database file grants
 * nothing. Several processes may share the file (the gateway serving, the CLI creating or revoking keys).
 */
export class ApiKeyStore implements KeyStore {
  readonly #db: DatabaseSync
  readonly #ownsDb: boolean
  readonly #keys: VerifiedKeys
  // Prepared once: these two run on the request path.
  readonly #selectByHash: StatementSync
  readonly #updateLastUsed: StatementSync
  /** Spend and reservations per key, in this same database. */
  readonly budgets: SqliteBudgets

  constructor(database: string | DatabaseSync, options: ApiKeyStoreOptions = {}) {
    this.#ownsDb = typeof database === 'string'
    this.#db = typeof database === 'string' ? new DatabaseSync(database) : database
    this.#keys = new VerifiedKeys(options)
    if (database !== ':memory:') {
      // As the usage ledger: a commit survives a crash of the process (kill -9), only a power loss can take the last
      // few; FULL would wait for the disk on every reservation and settlement of a budgeted key.
      this.#db.exec('PRAGMA journal_mode = WAL')
      this.#db.exec('PRAGMA synchronous = NORMAL')
      this.#db.exec('PRAGMA busy_timeout = 5000')
    }
    this.#db.exec(`CREATE TABLE IF NOT EXISTS api_keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      prefix TEXT NOT NULL,
      key_hash TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      last_used_at INTEGER,
      revoked_at INTEGER
    )`)
    // Migration: a database from before key policies lacks these columns (ALTER TABLE ADD COLUMN keeps the rows).
    const have = new Set(
      (this.#db.prepare('PRAGMA table_info(api_keys)').all() as { name: string }[]).map((c) => c.name),
    )
    for (const [column, type] of Object.entries(POLICY_COLUMNS)) {
      if (!have.has(column)) this.#db.exec(`ALTER TABLE api_keys ADD COLUMN ${column} ${type}`)
    }
    this.budgets = new SqliteBudgets(this.#db, () => this.#keys.now())
    this.#selectByHash = this.#db.prepare('SELECT * FROM api_keys WHERE key_hash = ?')
    this.#updateLastUsed = this.#db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?')
  }

  create(name: string, settings: KeySettings = {}): CreatedApiKey {
    checkSettings(settings)
    const k = newKey()
    const createdAt = this.#keys.now()
    this.#db
      .prepare('INSERT INTO api_keys (id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(k.id, name, k.prefix, k.hash, createdAt)
    this.update(k.id, settings)
    return { id: k.id, key: k.key, name, createdAt: iso(createdAt) }
  }

  list(): ApiKeyInfo[] {
    const rows = this.#db.prepare('SELECT * FROM api_keys ORDER BY created_at, rowid').all() as KeyRow[]
    return rows.map((row) => keyInfo(row, this.budgets.state(row.id)))
  }

  get(id: string): ApiKeyInfo | undefined {
    const row = this.#db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as KeyRow | undefined
    return row && keyInfo(row, this.budgets.state(row.id))
  }

  /** Changes a key's name, metadata or policy (not its spend). Undefined fields stay; null clears. */
  update(id: string, settings: KeySettings): ApiKeyInfo | undefined {
    const columns = settingsColumns(settings)
    if (columns.length) {
      this.#db
        .prepare(`UPDATE api_keys SET ${columns.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?`)
        .run(...columns.map(([, v]) => v), id)
    }
    this.#keys.forget(id)
    return this.get(id)
  }

  /**
   * A new secret for the same key (same id, policy and spend); the old secret stops working at once in this process,
   * and in other processes sharing the file within the cache TTL.
   */
  rotate(id: string): CreatedApiKey | undefined {
    const k = newKey()
    const result = this.#db
      .prepare('UPDATE api_keys SET key_hash = ?, prefix = ? WHERE id = ? AND revoked_at IS NULL')
      .run(k.hash, k.prefix, id)
    this.#keys.forget(id)
    if (Number(result.changes) === 0) return undefined
    const info = this.get(id)!
    return { id, key: k.key, name: info.name, createdAt: info.createdAt }
  }

  /** True when the key was active and is now revoked. Other processes sharing the file notice within the cache TTL. */
  revoke(id: string): boolean {
    const result = this.#db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(this.#keys.now(), id)
    this.#keys.forget(id)
    return Number(result.changes) > 0
  }

  /** A key from config or the environment: held as a hash in memory, never written to the database. */
  addStaticKey(key: string, name: string): ApiKeyIdentity {
    return this.#keys.addStatic(key, name)
  }

  verify(key: string): ApiKeyIdentity | undefined {
    const known = this.#keys.known(key)
    const identity =
      known.identity ??
      (known.hash &&
        this.#keys.admit(key, known.hash, this.#selectByHash.get(known.hash.toString('hex')) as KeyRow | undefined))
    if (identity && this.#keys.touchDue(identity)) this.#updateLastUsed.run(this.#keys.now(), identity.id)
    return identity
  }

  /** Why a key verify() refused is refused, when it is one of ours: for the 401's message (off the hot path). */
  refusal(key: string): 'expired' | 'revoked' | undefined {
    return refusalOf(this.#selectByHash.get(sha256(key).toString('hex')) as KeyRow | undefined, this.#keys.now())
  }

  close(): void {
    if (this.#ownsDb) this.#db.close()
  }
}

export function policyOf(row: KeyRow): KeyPolicy {
  return {
    expiresAt: row.expires_at,
    allowedModels: JSON.parse(row.allowed_models) as string[],
    minVerification: isLevel(row.min_verification) ? row.min_verification : 'none',
    teeOnly: row.tee_only === 1,
    timeouts: row.timeouts ? (JSON.parse(row.timeouts) as KeyTimeouts) : null,
    routing: row.routing ? routingOf(row.routing) : null,
    budget: row.budget === null ? null : BigInt(row.budget),
    budgetPeriod: (row.budget_period as BudgetPeriod | null) ?? null,
    rpm: row.rpm,
    tpm: row.tpm,
  }
}

/** Refuses settings the database would take but enforcement could not make sense of. */
function checkSettings(s: KeySettings): void {
  const fail = (message: string) => {
    throw new RangeError(message)
  }
  if (s.metadata !== undefined && (s.metadata === null || typeof s.metadata !== 'object' || Array.isArray(s.metadata)))
    fail('metadata must be a JSON object')
  if (
    s.allowedModels !== undefined &&
    !(Array.isArray(s.allowedModels) && s.allowedModels.every((m) => typeof m === 'string'))
  )
    fail('allowed models must be a list of model names')
  if (s.minVerification !== undefined && !isLevel(s.minVerification))
    fail('the minimum verification level is none, L0, L1, L2 or L3')
  if (s.teeOnly !== undefined && typeof s.teeOnly !== 'boolean') fail('tee_only is true or false')
  if (s.timeouts != null) {
    if (typeof s.timeouts !== 'object' || Array.isArray(s.timeouts)) fail('timeouts is an object')
    for (const [k, v] of Object.entries(s.timeouts)) {
      if (!['firstByteMs', 'totalMs', 'idleMs'].includes(k)) fail(`timeouts has no ${k}`)
      if (!Number.isSafeInteger(v) || (v as number) <= 0) fail('a timeout is a positive number of milliseconds')
    }
  }
  if (s.budget != null && s.budget < 0n) fail('the budget cannot be negative')
  if (s.budgetPeriod != null && !BUDGET_PERIODS.includes(s.budgetPeriod))
    fail(`the budget period is one of ${BUDGET_PERIODS.join(', ')}`)
  for (const [name, v] of [
    ['rpm', s.rpm],
    ['tpm', s.tpm],
  ] as const) {
    if (v != null && !(Number.isSafeInteger(v) && v > 0)) fail(`${name} must be a positive integer`)
  }
  if (s.expiresAt != null && !Number.isFinite(s.expiresAt)) fail('the expiry must be a date')
}

export function sha256(text: string): Buffer {
  // The one-shot digest: no Hash object per API-key check.
  return digest('sha256', text, 'buffer')
}

function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      // 248 = 4 × 62: rejecting the top bytes keeps every character equally likely.
      if (byte < 248 && out.length < length) out += BASE62[byte % 62]
    }
  }
  return out
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}

/** A key's routing defaults as stored: prices as decimal text (bigint has no JSON form). */
function routingJson(r: Partial<RoutingControls>): string {
  return JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))
}

function routingOf(text: string): Partial<RoutingControls> {
  const r = JSON.parse(text) as Record<string, unknown>
  const price = (v: unknown) => (typeof v === 'string' ? BigInt(v) : undefined)
  return {
    ...(typeof r.provider === 'string' && { provider: r.provider as RoutingControls['provider'] }),
    ...(typeof r.sort === 'string' && { sort: r.sort as RoutingControls['sort'] }),
    ...(typeof r.allowFallbacks === 'boolean' && { allowFallbacks: r.allowFallbacks }),
    ...(price(r.maxPricePrompt) !== undefined && { maxPricePrompt: price(r.maxPricePrompt) }),
    ...(price(r.maxPriceCompletion) !== undefined && { maxPriceCompletion: price(r.maxPriceCompletion) }),
  }
}
