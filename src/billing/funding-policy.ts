import { ZgContractError } from '../chain/errors.ts'

/** 0G provider rule (const.go MinimumLockedBalance, SDK MIN_LOCKED_BALANCE): 1 0G kept on top of what is owed. */
export const MIN_LOCKED_BALANCE = 10n ** 18n

export type FundingInputs = {
  /** The sub-account's on-chain balance. */
  balance: bigint
  /** Of which already on its way back to the ledger. */
  pendingRefund: bigint
  /** Fees the provider has earned and not yet settled (its /unsettledfee, or the gateway's own tally). */
  unsettled: bigint
  /** What the next requests are expected to cost (recent spend over a window). */
  expected: bigint
  /** The provider's locked reserve. */
  reserve: bigint
  /** Verified fees not yet moved into the sub-account: the most a top-up may move. */
  credit: bigint
}

export type FundingPlan = {
  /** unsettled + expected + reserve: what the provider's admission rule needs to find. */
  target: bigint
  /** balance − pendingRefund: what the provider's admission rule counts. */
  headroom: bigint
  /** How far the headroom falls short of the target (0 when funded). */
  deficit: bigint
  /** What to move in now: the deficit, but never more than verified work earned. */
  amount: bigint
}

/**
 * The funding decision for one sub-account. 0G provider admission: balance − pendingRefund ≥ unsettled + estimate +
 * MinimumLockedBalance, so that is the target; the transfer is capped by verified credit so unverified or disputed
 * work is never paid for in advance.
 */
export function planTopUp(i: FundingInputs): FundingPlan {
  const target = i.unsettled + i.expected + i.reserve
  const headroom = i.balance - i.pendingRefund
  const deficit = target > headroom ? target - headroom : 0n
  const amount = deficit < i.credit ? deficit : i.credit > 0n ? i.credit : 0n
  return { target, headroom, deficit, amount }
}

/** Fees seen within the last `windowMs`: the estimate of what the next window of requests will cost. */
export class SpendWindow {
  readonly #windowMs: number
  readonly #now: () => number
  readonly #entries: Array<{ at: number; fee: bigint }> = []
  #total = 0n

  constructor(windowMs: number, now: () => number = Date.now) {
    this.#windowMs = windowMs
    this.#now = now
  }

  add(fee: bigint): void {
    if (fee <= 0n) return
    this.#entries.push({ at: this.#now(), fee })
    this.#total += fee
  }

  total(): bigint {
    const oldest = this.#now() - this.#windowMs
    while (this.#entries.length && this.#entries[0]!.at <= oldest) this.#total -= this.#entries.shift()!.fee
    return this.#total
  }
}

export type DisputeThreshold = {
  /** Disputed responses from one provider after which it is no longer funded. Default 3. */
  count?: number
  /** Or this share of its checked responses (once `minChecked` were checked). Default: off. */
  share?: number
  minChecked?: number
}

/** Whether a provider's disputed responses passed the threshold. */
export function disputesExceeded(disputed: number, checked: number, t: DisputeThreshold): boolean {
  if (disputed >= (t.count ?? 3)) return true
  return t.share !== undefined && checked >= (t.minChecked ?? 10) && disputed / checked >= t.share
}

/** Contract errors that say the wallet's ledger cannot pay, whichever provider it is for. */
const LEDGER_SHORTAGES = new Set(['LedgerNotExists', 'InsufficientAvailableBalance', 'InsufficientBalance'])

/** Whether `err` is the ledger's want of funds (a wallet-wide problem), not anything about one provider. */
export function isLedgerShortage(err: unknown): err is ZgContractError {
  return err instanceof ZgContractError && LEDGER_SHORTAGES.has(err.errorName)
}
