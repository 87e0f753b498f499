import { isPostgresUrl, redactUrl } from '../store/postgres/url.ts'
import { type Options, UsageError, type Values } from './command.ts'

/** `--store`: where the gateway's keys, budgets and usage live, for `serve` and the commands that read them. */
export const storeOption: Options = {
  store: {
    type: 'string',
    description:
      'postgres://user:pass@host/db: keys, budgets, rate limits and usage in Postgres, shared by several gateway instances (ZG_STORE_URL; default: SQLite in the data dir)',
  },
}

/** The Postgres URL the flag or ZG_STORE_URL gives, or undefined for SQLite. */
export function storeOf(values: Values): string | undefined {
  const store = (values.store as string | undefined) ?? process.env.ZG_STORE_URL
  if (!store) return undefined
  if (!isPostgresUrl(store)) throw new UsageError(`--store takes a postgres:// URL; got ${redactUrl(store)}`)
  return store
}
