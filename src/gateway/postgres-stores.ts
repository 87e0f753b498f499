import { PostgresRateLimiter } from '../billing/postgres-rate-limits.ts'
import { PostgresUsageLedger } from '../billing/postgres-usage-ledger.ts'
import { advisoryLock, WALLET_LOCK } from '../store/postgres/advisory-lock.ts'
import { connectPostgres } from '../store/postgres/connect.ts'
import { migrate } from '../store/postgres/migrate.ts'
import { redactUrl } from '../store/postgres/url.ts'
import { PostgresFineTuningRecords } from './fine-tuning/postgres-records.ts'
import type { ApiKeyStoreOptions, KeyStore } from './http/api-keys.ts'
import { PostgresApiKeyStore } from './http/postgres-api-keys.ts'
import { PostgresResponseStore } from './responses/postgres-store.ts'
import type { GatewayStores } from './stores.ts'

/**
 * The gateway's stores in Postgres (loaded by stores.ts only when a store URL is given, so a gateway on SQLite
 * never loads the client): the schema brought up to date, key changes listened for, the wallet lock.
 */
export async function openPostgresStores(options: {
  store: string
  keys?: ApiKeyStoreOptions
  onError: (err: Error) => void
  log: (line: string) => void
}): Promise<GatewayStores> {
  const { onError } = options
  const where = redactUrl(options.store)
  const sql = connectPostgres(options.store, { applicationName: 'zg-gateway' })
  // Budgets and rate windows change on every call, and a busy key's calls queue on its row: their commits do not wait
  // for the disk. A crash of the database server may lose their last instants, never a usage record or a key change.
  const hot = connectPostgres(options.store, { applicationName: 'zg-gateway budgets', asyncCommit: true })
  try {
    await migrate(sql)
    const keys = new PostgresApiKeyStore(sql, { ...options.keys, budgetSql: hot })
    // Before the first request: a revocation by another instance must reach this one from the start.
    await keys.listen()
    const ledger = new PostgresUsageLedger(sql, { onError })
    return {
      kind: 'postgres',
      where,
      keys,
      ledger,
      fineTuning: new PostgresFineTuningRecords(sql),
      responses: new PostgresResponseStore(sql, {
        onError: (err) => options.log(`gateway: a stored response was not written: ${err.message}`),
      }),
      rateLimiter: new PostgresRateLimiter(hot),
      walletLock: advisoryLock(sql, WALLET_LOCK),
      async close() {
        await ledger.close()
        await Promise.all([sql.end({ timeout: 5 }), hot.end({ timeout: 5 })])
      },
    }
  } catch (err) {
    await Promise.all([sql.end({ timeout: 1 }).catch(() => {}), hot.end({ timeout: 1 }).catch(() => {})])
    throw new Error(`the store at ${where} could not be opened: ${(err as Error).message}`)
  }
}

/** The key store alone on Postgres, for `zg-gateway keys`. */
export async function openPostgresKeyStore(store: string): Promise<{ keys: KeyStore; close(): Promise<void> }> {
  const sql = connectPostgres(store, { max: 2, applicationName: 'zg-gateway keys' })
  try {
    await migrate(sql)
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {})
    throw new Error(`the store at ${redactUrl(store)} could not be opened: ${(err as Error).message}`)
  }
  return { keys: new PostgresApiKeyStore(sql), close: () => sql.end({ timeout: 5 }) }
}
