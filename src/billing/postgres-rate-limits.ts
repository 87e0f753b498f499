import type { Sql } from '../store/postgres/connect.ts'
import {
  decision,
  type RateCounter,
  type RateDecision,
  type RateLimits,
  WINDOW_MS,
  type Window,
} from './rate-limits.ts'

type WindowRow = { start: number; requests: number; tokens: number; now: number }

/**
 * Rate limits shared by every gateway instance (table rate_windows): one statement per admitted request opens or
 * counts the key's window, on the database's clock, so instances whose clocks differ still agree on the window.
 * Requests are exact across instances; tokens are charged after each answer, so calls in flight can pass the
 * token limit together by their own size, as with one instance.
 */
export class PostgresRateLimiter implements RateCounter {
  readonly #sql: Sql

  constructor(sql: Sql) {
    this.#sql = sql
  }

  async admit(keyId: string, limits: RateLimits, tokens: number): Promise<RateDecision> {
    const rpm = limits.rpm ?? null
    const tpm = limits.tpm ?? null
    // The row is updated only when the request fits (or its window has ended): a refusal counts nothing.
    const [counted] = await this.#sql<WindowRow[]>`
      WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now)
      INSERT INTO rate_windows AS w (key_id, window_start, requests, tokens)
      SELECT ${keyId}, clock.now, 1, 0 FROM clock
      ON CONFLICT (key_id) DO UPDATE SET
        window_start = CASE WHEN excluded.window_start - w.window_start >= ${WINDOW_MS} THEN excluded.window_start
                            ELSE w.window_start END,
        requests = CASE WHEN excluded.window_start - w.window_start >= ${WINDOW_MS} THEN 1 ELSE w.requests + 1 END,
        tokens = CASE WHEN excluded.window_start - w.window_start >= ${WINDOW_MS} THEN 0 ELSE w.tokens END
      WHERE excluded.window_start - w.window_start >= ${WINDOW_MS}
         OR ((${rpm}::int IS NULL OR w.requests + 1 <= ${rpm}::int)
             AND (${tpm}::int IS NULL OR w.tokens = 0 OR w.tokens + ${tokens}::bigint <= ${tpm}::int))
      RETURNING window_start::float8 AS start, requests, tokens::float8 AS tokens, (SELECT now FROM clock)::float8 AS now`
    if (counted) return decision(true, counted, limits, counted.now)
    const [current] = await this.#sql<WindowRow[]>`
      SELECT window_start::float8 AS start, requests, tokens::float8 AS tokens,
             (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now
        FROM rate_windows WHERE key_id = ${keyId}`
    const w: Window = current ?? { start: Date.now(), requests: 0, tokens: 0 }
    return decision(false, w, limits, current?.now ?? Date.now())
  }

  async charge(keyId: string, tokens: number): Promise<void> {
    if (tokens <= 0) return
    await this.#sql`
      WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now)
      INSERT INTO rate_windows AS w (key_id, window_start, requests, tokens)
      SELECT ${keyId}, clock.now, 0, ${tokens}::bigint FROM clock
      ON CONFLICT (key_id) DO UPDATE SET
        window_start = CASE WHEN excluded.window_start - w.window_start >= ${WINDOW_MS} THEN excluded.window_start
                            ELSE w.window_start END,
        requests = CASE WHEN excluded.window_start - w.window_start >= ${WINDOW_MS} THEN 0 ELSE w.requests END,
        tokens = CASE WHEN excluded.window_start - w.window_start >= ${WINDOW_MS} THEN excluded.tokens
                      ELSE w.tokens + excluded.tokens END`
  }
}
