import { randomUUID } from 'node:crypto'
import type { Sql } from '../store/postgres/connect.ts'
import {
  type BudgetRow,
  type BudgetState,
  type Budgets,
  budgetState,
  overBudget,
  periodStart,
  RESERVATION_TTL_MS,
  type Refusal,
  type Reservation,
} from './budgets.ts'

const BUDGET_COLUMNS =
  'budget::text AS budget, budget_period, spent::text AS spent, period_start::float8 AS period_start'

/**
 * Budgets in Postgres (table api_keys and key_reservations, migration 0001), shared by every gateway instance.
 * A reservation locks its key's row (SELECT … FOR UPDATE) for the check and the insert, so reservations of one key
 * take turns across instances and together never pass the budget; other keys are not held up.
 */
export class PostgresBudgets implements Budgets {
  readonly #sql: Sql
  readonly #now: () => number

  constructor(sql: Sql, now: () => number = Date.now) {
    this.#sql = sql
    this.#now = now
  }

  async reserve(keyId: string, amount: bigint): Promise<Reservation | Refusal> {
    const id = randomUUID()
    return this.#sql.begin(async (tx) => {
      const [row] = await tx.unsafe<BudgetRow[]>(`SELECT ${BUDGET_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE`, [
        keyId,
      ])
      if (!row) return { id, keyId, amount: 0n }
      const now = this.#now()
      const since = now - RESERVATION_TTL_MS
      // Reservations of a process that died before settling stop counting after an hour; they are swept here.
      const [held] = await tx`
        WITH swept AS (DELETE FROM key_reservations WHERE key_id = ${keyId} AND created_at < ${since})
        SELECT coalesce(sum(amount), 0)::text AS reserved
          FROM key_reservations WHERE key_id = ${keyId} AND created_at >= ${since}`
      const refusal = overBudget(budgetState(row, BigInt(held!.reserved as string), now), amount)
      if (refusal) return refusal
      await tx`INSERT INTO key_reservations (id, key_id, amount, created_at)
               VALUES (${id}, ${keyId}, ${amount.toString()}, ${now})`
      return { id, keyId, amount }
    })
  }

  /** One statement: the reservation goes, the fee is added to the period's spend (a new period starts from it). */
  async settle(reservation: Reservation, actual: bigint): Promise<void> {
    const now = this.#now()
    const daily = periodStart('daily', now)
    const weekly = periodStart('weekly', now)
    const monthly = periodStart('monthly', now)
    await this.#sql`
      WITH dropped AS (DELETE FROM key_reservations WHERE id = ${reservation.id})
      UPDATE api_keys SET
        spent = CASE WHEN p.current IS NOT NULL AND period_start IS NOT NULL AND period_start < p.current
                     THEN ${actual.toString()}::numeric ELSE spent + ${actual.toString()}::numeric END,
        period_start = CASE WHEN p.current IS NOT NULL AND (period_start IS NULL OR period_start < p.current)
                            THEN p.current ELSE period_start END
      FROM (SELECT CASE budget_period WHEN 'daily' THEN ${daily}::bigint WHEN 'weekly' THEN ${weekly}::bigint
                                      WHEN 'monthly' THEN ${monthly}::bigint END AS current
              FROM api_keys WHERE id = ${reservation.keyId}) AS p
      WHERE api_keys.id = ${reservation.keyId}`
  }

  async state(keyId: string): Promise<BudgetState | undefined> {
    const since = this.#now() - RESERVATION_TTL_MS
    const [row] = await this.#sql.unsafe<(BudgetRow & { reserved: string })[]>(
      `SELECT ${BUDGET_COLUMNS},
              (SELECT coalesce(sum(amount), 0)::text FROM key_reservations WHERE key_id = $1 AND created_at >= $2)
                AS reserved
         FROM api_keys WHERE id = $1`,
      [keyId, since],
    )
    return row && budgetState(row, BigInt(row.reserved), this.#now())
  }
}
