import { randomUUID } from 'node:crypto'
import type { DatabaseSync, StatementSync } from 'node:sqlite'

export type BudgetPeriod = 'daily' | 'weekly' | 'monthly'
export const BUDGET_PERIODS: readonly BudgetPeriod[] = ['daily', 'weekly', 'monthly']

/** Money held for one admitted call until its fee is known. */
export type Reservation = { id: string; keyId: string; amount: bigint }
export type Refusal = { refused: true; remaining: bigint; budget: bigint }

/**
 * Per-key spending limits with reservations: admission holds the call's worst-case fee, completion trues it up to
 * the fee recorded. Kept behind this interface so a Postgres implementation can replace the SQLite one.
 */
export interface Budgets {
  /** Holds `amount` against the key's budget, or refuses when spent + reserved + amount would pass it. */
  reserve(keyId: string, amount: bigint): Reservation | Refusal | Promise<Reservation | Refusal>
  /** Replaces the reservation by the fee actually recorded (0n for a failed call). */
  settle(reservation: Reservation, actual: bigint): void | Promise<void>
  state(keyId: string): BudgetState | undefined | Promise<BudgetState | undefined>
}

export type BudgetState = {
  budget: bigint | null
  period: BudgetPeriod | null
  spent: bigint
  reserved: bigint
  /** Start of the current period (ms), when the budget resets. */
  periodStart: number | null
}

/** The start (UTC, ms) of the period holding `now`: midnight, Monday midnight, or the 1st of the month. */
export function periodStart(period: BudgetPeriod, now: number): number {
  const d = new Date(now)
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
  if (period === 'daily') return midnight
  if (period === 'weekly') return midnight - ((d.getUTCDay() + 6) % 7) * 86_400_000
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
}

/** A key's budget columns, as both stores read them (amounts as decimal text). */
export type BudgetRow = {
  budget: string | null
  budget_period: string | null
  spent: string
  period_start: number | null
}

/** The budget as of `now`: a period that has ended starts over with nothing spent (reservations in flight stay). */
export function budgetState(row: BudgetRow, reserved: bigint, now: number): BudgetState {
  const period = (row.budget_period as BudgetPeriod | null) ?? null
  const budget = row.budget === null ? null : BigInt(row.budget)
  let spent = BigInt(row.spent)
  let start = row.period_start
  if (period) {
    const current = periodStart(period, now)
    if (start === null || start < current) {
      if (start !== null) spent = 0n
      start = current
    }
  }
  return { budget, period, spent, reserved, periodStart: start }
}

/** Whether holding `amount` more would pass the budget; the refusal says what remains. */
export function overBudget(s: BudgetState, amount: bigint): Refusal | undefined {
  if (s.budget === null || s.spent + s.reserved + amount <= s.budget) return undefined
  const remaining = s.budget - s.spent - s.reserved
  return { refused: true, remaining: remaining > 0n ? remaining : 0n, budget: s.budget }
}

/**
 * A reservation older than this is taken for one whose process died before settling it (no call runs an hour),
 * and stops counting: a crash cannot lock a budget up for good.
 */
export const RESERVATION_TTL_MS = 3_600_000

/**
 * Budgets in the api_keys table (columns budget, budget_period, spent, period_start; see api-keys.ts), calls in
 * flight in key_reservations, one row each. Amounts are neuron as decimal text: 10^18 per 0G overflows SQLite's
 * 64-bit integers past ~9 0G, so the check is done in bigint inside one BEGIN IMMEDIATE transaction. Node runs it
 * synchronously (no other request interleaves in this process) and SQLite's write lock serialises it with other
 * processes sharing the file.
 */
export class SqliteBudgets implements Budgets {
  readonly #db: DatabaseSync
  readonly #now: () => number
  readonly #select: StatementSync
  readonly #update: StatementSync
  readonly #held: StatementSync
  readonly #sweep: StatementSync
  readonly #hold: StatementSync
  readonly #drop: StatementSync

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db
    this.#now = now
    db.exec(`CREATE TABLE IF NOT EXISTS key_reservations (
      id TEXT PRIMARY KEY,
      key_id TEXT NOT NULL,
      amount TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`)
    db.exec('CREATE INDEX IF NOT EXISTS key_reservations_key ON key_reservations (key_id)')
    this.#select = db.prepare('SELECT budget, budget_period, spent, period_start FROM api_keys WHERE id = ?')
    this.#update = db.prepare('UPDATE api_keys SET spent = ?, period_start = ? WHERE id = ?')
    this.#held = db.prepare('SELECT amount FROM key_reservations WHERE key_id = ? AND created_at >= ?')
    this.#sweep = db.prepare('DELETE FROM key_reservations WHERE key_id = ? AND created_at < ?')
    this.#hold = db.prepare('INSERT INTO key_reservations (id, key_id, amount, created_at) VALUES (?, ?, ?, ?)')
    this.#drop = db.prepare('DELETE FROM key_reservations WHERE id = ?')
  }

  reserve(keyId: string, amount: bigint): Reservation | Refusal {
    return this.#transaction(() => {
      const row = this.#select.get(keyId) as BudgetRow | undefined
      const id = randomUUID()
      if (!row) return { id, keyId, amount: 0n }
      this.#sweep.run(keyId, this.#now() - RESERVATION_TTL_MS)
      const refusal = overBudget(this.#current(keyId, row), amount)
      if (refusal) return refusal
      this.#hold.run(id, keyId, amount.toString(), this.#now())
      return { id, keyId, amount }
    })
  }

  settle(reservation: Reservation, actual: bigint): void {
    this.#transaction(() => {
      this.#drop.run(reservation.id)
      const row = this.#select.get(reservation.keyId) as BudgetRow | undefined
      if (!row) return
      const s = this.#current(reservation.keyId, row)
      this.#update.run((s.spent + actual).toString(), s.periodStart, reservation.keyId)
    })
  }

  state(keyId: string): BudgetState | undefined {
    const row = this.#select.get(keyId) as BudgetRow | undefined
    return row && this.#current(keyId, row)
  }

  #current(keyId: string, row: BudgetRow): BudgetState {
    let reserved = 0n
    for (const r of this.#held.all(keyId, this.#now() - RESERVATION_TTL_MS) as { amount: string }[]) {
      reserved += BigInt(r.amount)
    }
    return budgetState(row, reserved, this.#now())
  }

  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const out = fn()
      this.#db.exec('COMMIT')
      return out
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }
}
