import { PostgresRateLimiter } from '../billing/postgres-rate-limits.ts'
import { PostgresUsageLedger } from '../billing/postgres-usage-ledger.ts'
import { advisoryLock, WALLET_LOCK } from '../store/postgres/advisory-lock.ts'
import { connectPostgres } from '../store/postgres/connect.ts'
import { migrate } from '../store/postgres/migrate.ts'
import { redactUrl } from '../store/postgres/url.ts'
import type { ApiKeyStoreOptions, KeyStore } from './http/api-keys.ts'
import { PostgresApiKeyStore } from './http/postgres-api-keys.ts'
import type { GatewayStores } from './stores.ts'

/**
 * The gateway's stores in Postgres (loaded by stores.ts only when a store URL is given, so a gateway on SQLite
 * never loads the client): the schema brought up to date, key changes listened for, the wallet lock.
 */
export async function openPostgresStores(options: {
  store: string
  keys?: ApiKeyStoreOptions
  onError: (err: Error) => void
}): Promise<GatewayStores> {
  const { onError } = options
  const where = redactUrl(options.store)
  const sql = connectPostgres(options.store, { applicationName: 'zg-gateway' })
  try {
    await migrate(sql)
    const keys = new PostgresApiKeyStore(sql, options.keys)
    // Before the first request: a revocation by another instance must reach this one from the start.
    await keys.listen()
    const ledger = new PostgresUsageLedger(sql, { onError })
    return {
      kind: 'postgres',
      where,
      keys,
      ledger,
      rateLimiter: new PostgresRateLimiter(sql),
      walletLock: advisoryLock(sql, WALLET_LOCK),
      async close() {
        await ledger.close()
        await sql.end({ timeout: 5 })
      },
    }
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {})
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
