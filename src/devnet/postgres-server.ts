import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'

/** A throwaway PostgreSQL server: a fresh cluster in a temporary directory, on loopback. */
export type PostgresServer = {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string
  port: number
  /** Stops the server (fast shutdown) and deletes its cluster. */
  stop(): Promise<void>
}

/** The directory holding initdb and postgres: on PATH, or Debian's /usr/lib/postgresql/<version>/bin. */
export function postgresBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir
  }
  const debian = '/usr/lib/postgresql'
  if (!existsSync(debian)) return undefined
  const versions = readdirSync(debian)
    .filter((v) => existsSync(join(debian, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] && join(debian, versions[0], 'bin')
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * PostgreSQL refuses to run as root: when this process is root, the cluster belongs to, and the server runs as,
 * the `postgres` user Debian's package creates.
 */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
  return { uid, gid }
}

/**
 * Starts a new cluster (initdb, trust authentication on loopback only) and its server on a free port. For tests and
 * the dev stack: durability is traded for speed (fsync off), which a throwaway cluster does not need, unless
 * `durable`.
 */
export async function startPostgresServer(
  options: {
    binDir?: string
    /** Keep Postgres's own durability (fsync on, every commit flushed), as a real server has it: for measurements. */
    durable?: boolean
  } = {},
): Promise<PostgresServer> {
  const bin = options.binDir ?? postgresBinDir()
  if (!bin) throw new Error('PostgreSQL is not installed (no initdb/postgres found): apt-get install postgresql')
  const dir = mkdtempSync(join(tmpdir(), 'zg-postgres-'))
  const user = runAs()
  if (user) chownSync(dir, user.uid, user.gid)
  const data = join(dir, 'data')
  execFileSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'], {
    stdio: 'ignore',
    ...user,
  })
  for (let tries = 0; ; tries++) {
    const port = await freePort()
    const child = spawn(
      join(bin, 'postgres'),
      [
        ...['-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port), '-c', 'max_connections=200'],
        ...(options.durable ? [] : ['-c', 'fsync=off']),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], ...user },
    )
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString()
    })
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`
    const up = await ready(url, child)
    if (up) return { url, port, stop: () => stop(child, dir) }
    // Another process took the port between freePort() and the bind: try another.
    if (tries < 3 && /could not bind|Address already in use/.test(stderr)) continue
    await stop(child, dir)
    throw new Error(`PostgreSQL did not start: ${stderr.trim().slice(-2000)}`)
  }
}

async function ready(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline && child.exitCode === null) {
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: false })
    try {
      await sql`SELECT 1`
      return true
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    } finally {
      await sql.end({ timeout: 1 })
    }
  }
  return false
}

async function stop(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGINT')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  rmSync(dir, { recursive: true, force: true })
}
