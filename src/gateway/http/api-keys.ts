import { hash as digest, randomBytes, timingSafeEqual } from 'node:crypto'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { LRUCache } from 'lru-cache'

/** Who a verified key belongs to; what request handlers and the usage ledger see. */
export type ApiKeyIdentity = { id: string; name: string }

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

export const API_KEY_PREFIX = 'sk-zg-'
const STATIC_ID_PREFIX = 'static_'
const RANDOM_CHARS = 32
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

type Row = {
  id: string
  name: string
  prefix: string
  key_hash: string
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
}

/**
 * The gateway's API keys in SQLite. Keys are stored as sha256 hashes only, so a copied database file grants
 * nothing. Several processes may share the file (the gateway serving, the CLI creating or revoking keys).
 */
export class ApiKeyStore {
  readonly #db: DatabaseSync
  readonly #ownsDb: boolean
  readonly #now: () => number
  readonly #touchIntervalMs: number
  readonly #verified: LRUCache<string, ApiKeyIdentity>
  readonly #touchedAt = new Map<string, number>()
  readonly #static: { hash: Buffer; identity: ApiKeyIdentity }[] = []
  // Prepared once: these two run on the request path.
  readonly #selectByHash: StatementSync
  readonly #updateLastUsed: StatementSync

  constructor(database: string | DatabaseSync, options: ApiKeyStoreOptions = {}) {
    this.#ownsDb = typeof database === 'string'
    this.#db = typeof database === 'string' ? new DatabaseSync(database) : database
    this.#now = options.now ?? Date.now
    this.#touchIntervalMs = options.touchIntervalMs ?? 60_000
    this.#verified = new LRUCache({ max: 10_000, ttl: options.cacheTtlMs ?? 10_000 })
    if (database !== ':memory:') {
      this.#db.exec('PRAGMA journal_mode = WAL')
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
    this.#selectByHash = this.#db.prepare('SELECT * FROM api_keys WHERE key_hash = ?')
    this.#updateLastUsed = this.#db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?')
  }

  create(name: string): CreatedApiKey {
    const key = API_KEY_PREFIX + randomBase62(RANDOM_CHARS)
    const id = `key_${randomBytes(8).toString('hex')}`
    const createdAt = this.#now()
    this.#db
      .prepare('INSERT INTO api_keys (id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, name, key.slice(0, 8), sha256(key).toString('hex'), createdAt)
    return { id, key, name, createdAt: iso(createdAt) }
  }

  list(): ApiKeyInfo[] {
    const rows = this.#db.prepare('SELECT * FROM api_keys ORDER BY created_at, rowid').all() as Row[]
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      prefix: row.prefix,
      createdAt: iso(row.created_at),
      lastUsedAt: row.last_used_at === null ? null : iso(row.last_used_at),
      revokedAt: row.revoked_at === null ? null : iso(row.revoked_at),
    }))
  }

  /** True when the key was active and is now revoked. Other processes sharing the file notice within the cache TTL. */
  revoke(id: string): boolean {
    const result = this.#db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(this.#now(), id)
    for (const [key, identity] of this.#verified.entries()) {
      if (identity.id === id) this.#verified.delete(key)
    }
    return Number(result.changes) > 0
  }

  /** A key from config or the environment: held as a hash in memory, never written to the database. */
  addStaticKey(key: string, name: string): ApiKeyIdentity {
    const hash = sha256(key)
    const identity = { id: `${STATIC_ID_PREFIX}${hash.subarray(0, 6).toString('hex')}`, name }
    this.#static.push({ hash, identity })
    return identity
  }

  verify(key: string): ApiKeyIdentity | undefined {
    // A key verified within the TTL is known by itself, in memory only: hashing it again (a cold call into OpenSSL,
    // some 40 µs of a request run one at a time) would only say what was said a moment ago.
    const cached = this.#verified.get(key)
    if (cached) {
      if (!cached.id.startsWith(STATIC_ID_PREFIX)) this.#touch(cached.id)
      return cached
    }
    const hash = sha256(key)
    for (const entry of this.#static) {
      if (timingSafeEqual(entry.hash, hash)) {
        this.#verified.set(key, entry.identity)
        return entry.identity
      }
    }
    const hex = hash.toString('hex')
    // Looking the row up by hash leaks at most how much of a sha256 matched, which says nothing about the key; the
    // comparison below is the constant-time check that decides.
    const row = this.#selectByHash.get(hex) as Row | undefined
    if (!row || row.revoked_at !== null) return undefined
    if (!timingSafeEqual(Buffer.from(row.key_hash, 'hex'), hash)) return undefined
    const identity = { id: row.id, name: row.name }
    this.#verified.set(key, identity)
    this.#touch(row.id)
    return identity
  }

  close(): void {
    if (this.#ownsDb) this.#db.close()
  }

  #touch(id: string): void {
    const now = this.#now()
    const last = this.#touchedAt.get(id)
    if (last !== undefined && now - last < this.#touchIntervalMs) return
    this.#touchedAt.set(id, now)
    this.#updateLastUsed.run(now, id)
  }
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
