import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Sql } from './connect.ts'

/** One versioned SQL file: `0001_gateway.sql` is version 1, named gateway. */
export type Migration = { version: number; name: string; sql: string }

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/

const MIGRATIONS = join('src', 'store', 'postgres', 'migrations')

/**
 * Where the migrations ship: beside this file in the sources; in the published package, under its src/, found from
 * whichever bundle chunk this code landed in.
 */
function migrationsDir(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url))
  for (;;) {
    if (existsSync(join(dir, MIGRATIONS))) return join(dir, MIGRATIONS)
    if (existsSync(join(dir, 'migrations', '0001_gateway.sql'))) return join(dir, 'migrations')
    const up = dirname(dir)
    if (up === dir) throw new Error(`the Postgres migrations (${MIGRATIONS}) are missing from this installation`)
    dir = up
  }
}

export function migrations(dir = migrationsDir()): Migration[] {
  return readdirSync(dir)
    .flatMap((file) => {
      const m = FILE.exec(file)
      return m ? [{ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), 'utf8') }] : []
    })
    .sort((a, b) => a.version - b.version)
}

// Any constant will do, as long as every process uses the same one: it serialises migrations, not requests.
const MIGRATION_LOCK = 0x7a67_0001

/**
 * Brings the database's schema up to date: the migrations not yet applied run in version order, in one transaction
 * (all or none). Several instances starting at once take turns on an advisory lock, so each file runs exactly once.
 * Returns the versions applied now.
 */
export async function migrate(sql: Sql, list: Migration[] = migrations()): Promise<number[]> {
  const applied: number[] = []
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`
    await tx`CREATE TABLE IF NOT EXISTS zg_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`
    const done = new Set((await tx`SELECT version FROM zg_schema_migrations`).map((r) => Number(r.version)))
    for (const m of list) {
      if (done.has(m.version)) continue
      await tx.unsafe(m.sql)
      await tx`INSERT INTO zg_schema_migrations (version, name) VALUES (${m.version}, ${m.name})`
      applied.push(m.version)
    }
    const newest = Math.max(0, ...done)
    const known = Math.max(0, ...list.map((m) => m.version))
    if (newest > known)
      throw new Error(
        `the database's schema is at version ${newest}, newer than this zg-gateway knows (${known}): upgrade zg-gateway`,
      )
  })
  return applied
}
