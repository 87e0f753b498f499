import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { RateCounter } from '../billing/rate-limits.ts'
import { type CallLedger, UsageLedger } from '../billing/usage-ledger.ts'
import type { SharedLock } from '../store/postgres/advisory-lock.ts'
import { isPostgresUrl, redactUrl } from '../store/postgres/url.ts'
import type { FineTuningRecords } from './fine-tuning/records.ts'
import { SqliteFineTuningRecords } from './fine-tuning/sqlite-records.ts'
import { ApiKeyStore, type ApiKeyStoreOptions, type KeyStore } from './http/api-keys.ts'
import { type ResponseRecords, ResponseStore } from './responses/store.ts'

/** Where the gateway's shared state lives: keys with their budgets, rate windows, the usage ledger and receipts. */
export type GatewayStores = {
  /** `sqlite` (files in the data dir: one instance) or `postgres` (several instances on one database). */
  kind: 'sqlite' | 'postgres'
  /** What to tell an operator: the directory, or the URL without its password. */
  where: string
  keys: KeyStore
  ledger: CallLedger
  /** Responses API responses (previous_response_id, GET/DELETE /v1/responses/{id}). */
  responses: ResponseRecords
  /** Fine-tuning files, jobs with their events, and the tuned models. */
  fineTuning: FineTuningRecords
  /** Per-key rate windows shared by the instances; undefined: each process counts in its memory. */
  rateLimiter?: RateCounter
  /** Held around each wallet transaction when several instances send from one wallet. */
  walletLock?: SharedLock
  /** Commits what is queued and closes the stores. */
  close(): Promise<void>
}

export type StoreOptions = {
  /** The gateway's data directory (SQLite files; the default store). */
  dataDir: string
  /** `postgres://…` selects Postgres (`--store`, `ZG_STORE_URL`); unset, SQLite in `dataDir`. */
  store?: string
  keys?: ApiKeyStoreOptions
  /** Where a usage record's commit waits for a moment no client is waiting on (the SQLite ledger only). */
  whenIdle?: (commit: () => void) => void
  log: (line: string) => void
}

/** Opens the store `options.store` names; for Postgres it brings the schema up to date first. */
export async function openGatewayStores(options: StoreOptions): Promise<GatewayStores> {
  const onError = (err: Error) => options.log(`gateway: a usage record was not written: ${err.message}`)
  if (options.store !== undefined && !isPostgresUrl(options.store))
    throw new Error(
      `--store takes a postgres:// URL (SQLite, the default, needs none); got ${redactUrl(options.store)}`,
    )
  if (!options.store) {
    mkdirSync(options.dataDir, { recursive: true })
    const keys = new ApiKeyStore(join(options.dataDir, 'gateway.sqlite'), options.keys)
    const ledger = new UsageLedger(join(options.dataDir, 'usage.sqlite'), { onError, whenIdle: options.whenIdle })
    const responses = new ResponseStore(join(options.dataDir, 'responses.sqlite'), {
      onError: (err) => options.log(`gateway: a stored response was not written: ${err.message}`),
      whenIdle: options.whenIdle,
    })
    const fineTuning = new SqliteFineTuningRecords(
      join(options.dataDir, 'fine-tuning.sqlite'),
      join(options.dataDir, 'fine-tuning', 'files'),
    )
    return {
      kind: 'sqlite',
      where: options.dataDir,
      keys,
      ledger,
      responses,
      fineTuning,
      async close() {
        ledger.close()
        responses.close()
        fineTuning.close()
        keys.close()
      },
    }
  }
  return (await import('./postgres-stores.ts')).openPostgresStores({
    store: options.store,
    keys: options.keys,
    onError,
    log: options.log,
  })
}

/** The key store alone, for the commands that manage keys (`zg-gateway keys`): the same one `serve` reads. */
export async function openKeyStore(options: {
  dataDir: string
  store?: string
}): Promise<{ keys: KeyStore; close(): Promise<void> }> {
  if (!options.store) {
    mkdirSync(options.dataDir, { recursive: true })
    const keys = new ApiKeyStore(join(options.dataDir, 'gateway.sqlite'))
    return { keys, close: async () => keys.close() }
  }
  return (await import('./postgres-stores.ts')).openPostgresKeyStore(options.store)
}
