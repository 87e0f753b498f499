import type { Sql } from './connect.ts'

/** Runs `fn` while holding a lock that every process on the same database shares. */
export type SharedLock = <T>(fn: () => Promise<T>) => Promise<T>

/**
 * A lock across processes: a session-level advisory lock on a connection reserved for the holder. Waiters queue in
 * Postgres; a holder that dies (kill -9, lost host) loses its session and with it the lock, so the next waiter goes
 * on without anyone having to notice.
 */
export function advisoryLock(sql: Sql, key: number): SharedLock {
  return async (fn) => {
    const connection = await sql.reserve()
    try {
      await connection`SELECT pg_advisory_lock(${key})`
      try {
        return await fn()
      } finally {
        // Unlocked even when fn failed; a broken connection has already dropped the lock with its session.
        await connection`SELECT pg_advisory_unlock(${key})`.catch(() => {})
      }
    } finally {
      connection.release()
    }
  }
}

/** The lock every wallet transaction of the gateway runs under, on every instance: one nonce at a time. */
export const WALLET_LOCK = 0x7a67_0002
