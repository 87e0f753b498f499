import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { startPostgresServer } from '../../src/devnet/postgres-server.ts'

/**
 * A fresh, empty database for one test file: on the server ZG_TEST_POSTGRES_URL names (CI starts one), or else on
 * a throwaway server started now from the installed PostgreSQL binaries.
 */
export async function testDatabase(): Promise<{ url: string; dispose(): Promise<void> }> {
  const shared = process.env.ZG_TEST_POSTGRES_URL
  if (!shared) {
    const server = await startPostgresServer()
    return { url: server.url, dispose: () => server.stop() }
  }
  const name = `zg_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(shared, { max: 1, onnotice: false })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  const url = new URL(shared)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async dispose() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    },
  }
}
