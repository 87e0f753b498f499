import postgres from 'postgres'

// Also here for modules that hold a client anyway; url.ts loads none, for code that only reads settings.
export { isPostgresUrl, redactUrl } from './url.ts'

export type Sql = postgres.Sql
export type TransactionSql = postgres.TransactionSql

export type PostgresOptions = {
  /** Connections in the pool. */
  max?: number
  /** Shown in pg_stat_activity, so an operator can tell the gateway's connections from a provider node's. */
  applicationName?: string
  /**
   * Commits return before they are flushed to disk (synchronous_commit off): for state that is rewritten on every
   * call and whose last instants a crash of the database server may lose, never for records of delivered answers.
   */
  asyncCommit?: boolean
}

/**
 * A pool of connections to `url`. NUMERIC (money, neuron) and INT8 come back as text, read with BigInt where they
 * are money; times are epoch milliseconds in BIGINT columns, read with Number (exact below 2^53).
 */
export function connectPostgres(url: string, options: PostgresOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    // The server's notices (e.g. "relation already exists, skipping") are not the operator's business.
    onnotice: false,
    connect_timeout: 10,
    idle_timeout: 60,
    connection: {
      application_name: options.applicationName ?? 'zg-gateway',
      ...(options.asyncCommit && { synchronous_commit: 'off' }),
    },
  })
}
