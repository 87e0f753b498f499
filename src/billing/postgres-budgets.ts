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
  'budget::text AS budget, budget_period, spent::text AS spent, period_start::float8 AS period_start, reserved::text AS reserved'

/** Expired reservations are swept at most this often by each instance. */
const SWEEP_EVERY_MS = 60_000

/**
 * Budgets in Postgres (table api_keys, whose `reserved` column holds what calls in flight hold, and
 * key_reservations, one row each), shared by every gateway instance. A reservation is one UPDATE of its key's row
 * whose WHERE is the budget check: concurrent ones, from any instance, queue on the row and each is checked against
 * the row as the one before left it, so together they never pass the budget. Settling is one statement too.
 */
export class PostgresBudgets implements Budgets {
  readonly #sql: Sql
  readonly #now: () => number
  #sweptAt = 0

  constructor(sql: Sql, now: () => number = Date.now) {
    this.#sql = sql
    this.#now = now
  }

  /** The start of the current day, week and month (ms): the statements pick the one of the row's budget_period. */
  #periods(now: number) {
    return {
      daily: periodStart('daily', now),
      weekly: periodStart('weekly', now),
      monthly: periodStart('monthly', now),
    }
  }

  async reserve(keyId: string, amount: bigint): Promise<Reservation | Refusal> {
    this.#sweep(this.#now())
    // A refusal is read after the UPDATE; should calls have settled in between and made room, it is tried again.
    for (let tries = 1; ; tries++) {
      const reservation = await this.#hold(keyId, amount)
      if (reservation) return reservation
      const state = await this.state(keyId)
      // No such key: nothing to hold (admission only asks for keys with a budget).
      if (!state) return { id: randomUUID(), keyId, amount: 0n }
      const refusal = overBudget(state, amount)
      if (refusal || tries === 3) return refusal ?? { refused: true, remaining: 0n, budget: state.budget ?? 0n }
    }
  }

  /** The one statement that holds `amount` if it fits the budget; undefined when it does not. */
  async #hold(keyId: string, amount: bigint): Promise<Reservation | undefined> {
    const id = randomUUID()
    const now = this.#now()
    const p = this.#periods(now)
    const [held] = await this.#sql`
      WITH held AS (
        UPDATE api_keys SET reserved = reserved + ${amount.toString()}::numeric
         WHERE id = ${keyId}
           AND (budget IS NULL
                OR (CASE WHEN period_start < (CASE budget_period WHEN 'daily' THEN ${p.daily}::bigint
                                                WHEN 'weekly' THEN ${p.weekly}::bigint
                                                WHEN 'monthly' THEN ${p.monthly}::bigint END)
                         THEN 0 ELSE spent END) + reserved + ${amount.toString()}::numeric <= budget)
        RETURNING id
      ), noted AS (
        INSERT INTO key_reservations (id, key_id, amount, created_at)
        SELECT ${id}, held.id, ${amount.toString()}::numeric, ${now} FROM held RETURNING id
      )
      SELECT count(*)::int AS n FROM noted`
    return held!.n === 1 ? { id, keyId, amount } : undefined
  }

  /** One statement: the reservation goes, the fee is added to the period's spend (a new period starts from it). */
  async settle(reservation: Reservation, actual: bigint): Promise<void> {
    const p = this.#periods(this.#now())
    await this.#sql`
      WITH dropped AS (DELETE FROM key_reservations WHERE id = ${reservation.id} RETURNING amount),
      current AS (
        SELECT CASE budget_period WHEN 'daily' THEN ${p.daily}::bigint WHEN 'weekly' THEN ${p.weekly}::bigint
                                  WHEN 'monthly' THEN ${p.monthly}::bigint END AS start
          FROM api_keys WHERE id = ${reservation.keyId})
      UPDATE api_keys SET
        reserved = reserved - coalesce((SELECT amount FROM dropped), 0),
        spent = CASE WHEN period_start < current.start THEN ${actual.toString()}::numeric
                     ELSE spent + ${actual.toString()}::numeric END,
        period_start = CASE WHEN current.start IS NOT NULL AND (period_start IS NULL OR period_start < current.start)
                            THEN current.start ELSE period_start END
      FROM current
      WHERE api_keys.id = ${reservation.keyId}`
  }

  async state(keyId: string): Promise<BudgetState | undefined> {
    const [row] = await this.#sql.unsafe<(BudgetRow & { reserved: string })[]>(
      `SELECT ${BUDGET_COLUMNS} FROM api_keys WHERE id = $1`,
      [keyId],
    )
    return row && budgetState(row, BigInt(row.reserved), this.#now())
  }

  /**
   * Reservations of a process that died before settling stop counting after an hour: deleted, and what they held
   * given back to their keys, in one statement. In the background, at most once a minute per instance.
   */
  #sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return
    this.#sweptAt = now
    void this.#sql`
      WITH gone AS (DELETE FROM key_reservations WHERE created_at < ${now - RESERVATION_TTL_MS} RETURNING key_id, amount),
      per_key AS (SELECT key_id, sum(amount) AS amount FROM gone GROUP BY key_id)
      UPDATE api_keys SET reserved = reserved - per_key.amount FROM per_key WHERE api_keys.id = per_key.key_id`.catch(
      () => {
        this.#sweptAt = 0
      },
    )
  }
}
