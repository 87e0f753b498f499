import { type Address, formatEther, getAddress } from 'viem'
import { acknowledgeTEESigner } from '../chain/actions/acknowledge-tee-signer.ts'
import { getAccount } from '../chain/actions/get-account.ts'
import { retrieveFund } from '../chain/actions/retrieve-fund.ts'
import { transferFund } from '../chain/actions/transfer-fund.ts'
import type { ZgClients } from '../chain/clients.ts'
import type { SharedLock } from '../store/postgres/advisory-lock.ts'
import {
  type DisputeThreshold,
  disputesExceeded,
  type FundingPlan,
  isLedgerShortage,
  MIN_LOCKED_BALANCE,
  planTopUp,
  SpendWindow,
} from './funding-policy.ts'

const ONE_0G = 10n ** 18n
/** How long a wallet transaction waits for the wallet's earlier ones (another process's) to be mined. */
const PENDING_WAIT_MS = 120_000

export type EscrowOptions = {
  clients: ZgClients
  /** First transfer into a new sub-account (≥ 1 0G, the contract's minimum to open one). Default 2 0G. */
  initialDeposit?: bigint
  /** Smallest top-up worth a transaction, unless it closes the whole deficit. Default 0.01 0G. */
  minTopUp?: bigint
  /** The provider's locked reserve (MinimumLockedBalance). Default 1 0G, as on mainnet. */
  reserve?: bigint
  /** The window over which recent spend estimates the next requests' cost. Default 60 s. */
  spendWindowMs?: number
  /** When a provider's disputed responses stop its funding. Default: 3 disputed. */
  disputes?: DisputeThreshold
  /** How often every open sub-account is re-checked in the background. Default 30 s; 0 turns it off. */
  intervalMs?: number
  /** The provider's own count of unsettled fees (GET /v1/user/{addr}/unsettledfee); else the gateway's tally. */
  unsettledFee?: (provider: Address) => Promise<bigint>
  /** Told when a provider is stopped (true) by the policy: the router leaves it out while it is. */
  onFlag?: (provider: Address, flagged: boolean) => void
  /**
   * Held around each wallet transaction, when other processes send from the same wallet (several gateway instances
   * on one Postgres): their transactions then take turns too, so no two are built on the same nonce.
   */
  walletLock?: SharedLock
  now?: () => number
  log?: (line: string) => void
}

/** `idle`: known from past calls, not used since this process started. */
export type FundingState = 'idle' | 'opening' | 'funded' | 'topping up' | 'underfunded' | 'stopped'

/** What the policy knows and decided about one provider's sub-account (for /admin/funding and `account show`). */
export type FundingStatus = {
  provider: Address
  state: FundingState
  /** Why, in words: "stopped: 3 disputed", the last chain error, "waiting for verified work". */
  reason: string | null
  balance: bigint | null
  pendingRefund: bigint | null
  /** The provider's unsettled fees as last known, and where that came from. */
  unsettled: bigint
  unsettledSource: 'provider' | 'gateway'
  expected: bigint
  reserve: bigint
  target: bigint | null
  /** Verified fees not yet moved into the sub-account. */
  credit: bigint
  /** Verified fees in total (this process). */
  verified: bigint
  /** Moved into the sub-account by the policy (this process), opening included. */
  movedIn: bigint
  checked: number
  disputed: number
  checkedAt: number | null
}

type Funding = {
  provider: Address
  state: FundingState
  reason: string | null
  balance: bigint | null
  pendingRefund: bigint | null
  /** Last answer of the provider's /unsettledfee, and the fees seen since (the tally when it cannot be asked). */
  polled: bigint | null
  sincePoll: bigint
  credit: bigint
  verified: bigint
  movedIn: bigint
  checked: number
  disputed: number
  spend: SpendWindow
  checkedAt: number | null
}

/**
 * The wallet's escrow policy. A provider's sub-account is opened with a fixed deposit (on the first call's path:
 * until it exists the provider refuses the call), and afterwards kept just funded enough for the provider's admission
 * rule: unsettled fees + the expected next requests + the locked reserve. Top-ups run in the background and move at
 * most the fees of responses the gateway verified, so unverified or disputed work is never paid for in advance. A
 * provider whose disputed responses pass the threshold is stopped: no more funding, a refund of what is left, and
 * the router leaves it out. Every chain transaction goes through one queue, since they share the wallet's nonce.
 */
export class EscrowManager {
  readonly #clients: ZgClients
  readonly #initial: bigint
  readonly #minTopUp: bigint
  readonly #reserve: bigint
  readonly #windowMs: number
  readonly #disputes: DisputeThreshold
  readonly #unsettledFee: ((provider: Address) => Promise<bigint>) | undefined
  readonly #onFlag: (provider: Address, flagged: boolean) => void
  readonly #walletLock: SharedLock
  readonly #now: () => number
  readonly #log: (line: string) => void
  readonly #open = new Map<string, Promise<void>>()
  /** The providers whose opening succeeded. */
  readonly #opened = new Set<string>()
  readonly #funding = new Map<string, Funding>()
  /** Per provider: the rebalance running, and the one to run after it. */
  readonly #running = new Map<string, Promise<FundingPlan | undefined>>()
  readonly #next = new Map<string, Promise<FundingPlan | undefined>>()
  readonly #timer: NodeJS.Timeout | undefined
  /** The last transfer's failure when it was the ledger's want of funds; cleared by the next transfer that passes. */
  #shortage: Error | undefined
  #queue: Promise<unknown> = Promise.resolve()
  /** Whether other processes send from this wallet too (a wallet lock was given). */
  readonly #shared: boolean

  constructor(options: EscrowOptions) {
    this.#clients = options.clients
    this.#initial = options.initialDeposit ?? 2n * ONE_0G
    this.#minTopUp = options.minTopUp ?? ONE_0G / 100n
    this.#reserve = options.reserve ?? MIN_LOCKED_BALANCE
    this.#windowMs = options.spendWindowMs ?? 60_000
    this.#disputes = options.disputes ?? {}
    this.#unsettledFee = options.unsettledFee
    this.#onFlag = options.onFlag ?? (() => {})
    this.#walletLock = options.walletLock ?? ((fn) => fn())
    this.#shared = options.walletLock !== undefined
    this.#now = options.now ?? Date.now
    this.#log = options.log ?? (() => {})
    const interval = options.intervalMs ?? 30_000
    if (interval > 0) {
      this.#timer = setInterval(() => void this.rebalanceAll(), interval)
      this.#timer.unref()
    }
  }

  get user(): Address {
    return this.#clients.walletClient!.account.address
  }

  /** Stops the background checks. */
  close(): void {
    clearInterval(this.#timer)
  }

  /**
   * Runs another part's wallet transaction (fine-tuning's transfers and acknowledgements) in the same queue as the
   * escrow's own: they share the wallet's nonce.
   */
  walletTransaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.#serial(fn)
  }

  /** Runs chain transactions one at a time, here and, under the wallet lock, across processes. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const locked = this.#shared ? () => this.#walletLock(() => this.#quiet().then(fn)) : fn
    const run = this.#queue.then(locked, locked)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /**
   * Waits, holding the wallet lock, until no transaction of the wallet is pending: one sent by a holder that died
   * before it was mined would otherwise be built on again (the same sub-account opened twice).
   */
  async #quiet(): Promise<void> {
    const address = this.user
    const deadline = this.#now() + PENDING_WAIT_MS
    for (;;) {
      const [pending, mined] = await Promise.all([
        this.#clients.publicClient.getTransactionCount({ address, blockTag: 'pending' }),
        this.#clients.publicClient.getTransactionCount({ address, blockTag: 'latest' }),
      ])
      if (pending <= mined) return
      if (this.#now() > deadline)
        throw new Error(
          `the wallet still has ${pending - mined} transactions pending after ${PENDING_WAIT_MS / 1000} s`,
        )
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  #of(provider: Address): Funding {
    const key = provider.toLowerCase()
    let f = this.#funding.get(key)
    if (!f) {
      f = {
        provider: getAddress(provider),
        state: 'opening',
        reason: null,
        balance: null,
        pendingRefund: null,
        polled: null,
        sincePoll: 0n,
        credit: 0n,
        verified: 0n,
        movedIn: 0n,
        checked: 0,
        disputed: 0,
        spend: new SpendWindow(this.#windowMs, this.#now),
        checkedAt: null,
      }
      this.#funding.set(key, f)
    }
    return f
  }

  /** Makes sure a funded, acknowledged sub-account with `provider` exists (once per provider per process). */
  ensureOpen(provider: Address): Promise<void> {
    const key = provider.toLowerCase()
    let opening = this.#open.get(key)
    if (!opening) {
      opening = this.#openAccount(provider)
      opening.then(
        () => this.#opened.add(key),
        (err: Error) => {
          this.#open.delete(key)
          const f = this.#of(provider)
          f.state = 'underfunded'
          f.reason = `could not open the sub-account: ${err.message}`
        },
      )
      this.#open.set(key, opening)
    }
    return opening
  }

  /**
   * Whether `provider`'s sub-account is known open (an `ensureOpen` of it succeeded): a call to a provider already in
   * use then awaits nothing for it.
   */
  isOpen(provider: Address): boolean {
    return this.#opened.has(provider.toLowerCase())
  }

  /**
   * Why the wallet could not refill `provider`'s sub-account, when its ledger is short of funds (else undefined): a
   * provider refusing for want of escrow is then the wallet's problem. Asks for a rebalance, so a deposit made since
   * is noticed at once.
   */
  ledgerShortage(provider: Address): Error | undefined {
    if (this.#shortage) void this.rebalance(provider)
    return this.#shortage
  }

  /**
   * What the sub-account with `provider` can still cover beyond the fees it owes and the locked reserve, as last
   * read; undefined before the policy has read it.
   */
  headroom(provider: Address): bigint | undefined {
    const f = this.#funding.get(provider.toLowerCase())
    if (!f || f.balance === null || f.pendingRefund === null) return undefined
    const left = f.balance - f.pendingRefund - (f.polled ?? 0n) - f.sincePoll - this.#reserve
    return left > 0n ? left : 0n
  }

  /** Whether the policy stopped funding `provider` (the router leaves it out). */
  isStopped(provider: Address): boolean {
    return this.#funding.get(provider.toLowerCase())?.state === 'stopped'
  }

  async #openAccount(provider: Address): Promise<void> {
    const f = this.#of(provider)
    let account = await getAccount(this.#clients, { user: this.user, provider })
    if (!account) {
      // Read again under the lock: another instance of the same wallet may have opened it meanwhile.
      account = await this.#serial(async () => {
        const opened = await getAccount(this.#clients, { user: this.user, provider })
        if (!opened) await transferFund(this.#clients, { provider, amount: this.#initial })
        return opened
      })
    }
    if (!account) {
      f.movedIn += this.#initial
      f.balance = this.#initial
      f.pendingRefund = 0n
      this.#log(`escrow: opened a sub-account with ${provider} (${formatEther(this.#initial)} 0G)`)
    } else {
      if (!account.acknowledged) {
        await this.#serial(() => acknowledgeTEESigner(this.#clients, { provider, acknowledged: true }))
      }
      f.balance = account.balance
      f.pendingRefund = account.pendingRefund
    }
    if (f.state === 'opening' || f.state === 'idle') {
      f.state = 'funded'
      f.reason = null
    }
  }

  /**
   * A response from `provider` was checked. Its fee counts toward the expected spend and the provider's unsettled
   * fees whatever the outcome; only a verified one may be moved into escrow; a disputed one counts toward stopping.
   */
  onReceipt(provider: Address, status: string, fee: bigint): void {
    const f = this.#of(provider)
    f.checked++
    if (fee > 0n) {
      f.spend.add(fee)
      f.sincePoll += fee
    }
    if (status === 'disputed') f.disputed++
    // Checked on every receipt: a share threshold may be reached by a check that is not itself disputed.
    if (f.disputed > 0 && f.state !== 'stopped' && disputesExceeded(f.disputed, f.checked, this.#disputes))
      this.#stop(f)
    else if (status === 'verified') this.creditVerified(provider, fee)
  }

  /**
   * Takes back the dispute counts of calls checked before this process (the usage ledger's records), so a restart
   * does not fund or route to a provider the policy stopped. Verified fees of past processes are not credited again.
   */
  restore(
    calls: Iterable<{ provider: Address; verification: string; createdAt: number }>,
    resumedAt: ReadonlyMap<string, number> = new Map(),
  ): void {
    for (const call of calls) {
      if (call.verification === 'pending' || call.verification === 'unverifiable') continue
      // An operator's resume forgives what came before it.
      if (call.createdAt < (resumedAt.get(call.provider.toLowerCase()) ?? 0)) continue
      const known = this.#funding.has(call.provider.toLowerCase())
      const f = this.#of(call.provider)
      if (!known) f.state = 'idle'
      f.checked++
      if (call.verification === 'disputed') f.disputed++
    }
    for (const f of this.#funding.values())
      if (f.state !== 'stopped' && disputesExceeded(f.disputed, f.checked, this.#disputes)) this.#stop(f)
  }

  /** A response from `provider` was verified: its fee may be moved into escrow. */
  creditVerified(provider: Address, fee: bigint): void {
    if (fee <= 0n) return
    const f = this.#of(provider)
    f.credit += fee
    f.verified += fee
    if (f.state !== 'stopped' && f.credit >= this.#minTopUp && this.#mayBeShort(f)) void this.rebalance(provider)
  }

  /**
   * Whether the sub-account may be under its target, from the figures already known (the last read balance, the fees
   * seen since): a busy provider's receipts then cost no chain read each. A settlement lowers the balance and the
   * unsettled fees alike, so a stale pair still tells.
   */
  #mayBeShort(f: Funding): boolean {
    if (f.balance === null || f.pendingRefund === null) return true
    const target = (f.polled ?? 0n) + f.sincePoll + f.spend.total() + this.#reserve
    return target > f.balance - f.pendingRefund
  }

  /** Verified fees not yet moved into the provider's sub-account. */
  credit(provider: Address): bigint {
    return this.#funding.get(provider.toLowerCase())?.credit ?? 0n
  }

  /** Moves all the verified credit into the provider's sub-account now, whatever the target. */
  topUp(provider: Address): Promise<bigint> {
    const f = this.#of(provider)
    return this.#serial(async () => {
      const amount = f.credit
      if (amount <= 0n || f.state === 'stopped') return 0n
      await this.#transfer(f, amount)
      return amount
    })
  }

  /**
   * Brings the sub-account up to its target (unsettled + expected + reserve), moving at most the verified credit; in
   * the background, its transfer queued with the wallet's other transactions. Resolves to the plan (undefined when
   * nothing was checked: stopped, not open, or the chain could not be read; the reason is in the status). Never
   * rejects.
   */
  rebalance(provider: Address): Promise<FundingPlan | undefined> {
    const key = provider.toLowerCase()
    const next = this.#next.get(key)
    if (next) return next
    const running = this.#running.get(key)
    if (running) {
      // One more run after the current one, for credit or fees that arrived since it read them; later asks join it.
      const after = running.then(() => {
        this.#next.delete(key)
        return this.rebalance(provider)
      })
      this.#next.set(key, after)
      return after
    }
    const run = this.#rebalanceNow(this.#of(provider))
      .catch((err: Error) => {
        const f = this.#of(provider)
        if (f.state !== 'stopped') {
          f.state = 'underfunded'
          f.reason = err.message.split('\n')[0]!
        }
        this.#log(`escrow: funding ${provider} failed: ${f.reason}`)
        return undefined
      })
      .finally(() => this.#running.delete(key))
    this.#running.set(key, run)
    return run
  }

  async #rebalanceNow(f: Funding): Promise<FundingPlan | undefined> {
    if (f.state === 'stopped' || !this.#opened.has(f.provider.toLowerCase())) return undefined
    const [account, unsettled] = await Promise.all([
      getAccount(this.#clients, { user: this.user, provider: f.provider }),
      this.#pollUnsettled(f),
    ])
    if (!account) throw new Error(`the sub-account with ${f.provider} is gone`)
    f.balance = account.balance
    f.pendingRefund = account.pendingRefund
    f.checkedAt = this.#now()
    const plan = planTopUp({
      balance: account.balance,
      pendingRefund: account.pendingRefund,
      unsettled,
      expected: f.spend.total(),
      reserve: this.#reserve,
      credit: f.credit,
    })
    // A top-up smaller than minTopUp waits for more credit, unless it closes the whole deficit. The reads above ran
    // outside the transaction queue, so a first call's opening never waits behind them.
    if (plan.amount > 0n && (plan.amount >= this.#minTopUp || plan.amount === plan.deficit)) {
      await this.#serial(() => {
        // Credit an explicit topUp() moved meanwhile is not moved twice.
        let amount = plan.amount
        if (f.credit < amount) amount = f.credit
        return amount > 0n ? this.#transfer(f, amount) : Promise.resolve()
      })
    }
    const short = plan.deficit - plan.amount
    f.state = short > 0n ? 'underfunded' : 'funded'
    f.reason = short > 0n ? `${formatEther(short)} 0G short of the target, waiting for verified work` : null
    return plan
  }

  /** The provider's unsettled fees: asked of it, else the last answer plus the fees the gateway saw since. */
  async #pollUnsettled(f: Funding): Promise<bigint> {
    if (this.#unsettledFee) {
      try {
        const fee = await this.#unsettledFee(f.provider)
        f.polled = fee
        f.sincePoll = 0n
        return fee
      } catch (err) {
        this.#log(`escrow: ${f.provider} did not tell its unsettled fees: ${(err as Error).message}`)
      }
    }
    return (f.polled ?? 0n) + f.sincePoll
  }

  /** Moves `amount` of verified credit in (inside the queue). */
  async #transfer(f: Funding, amount: bigint): Promise<void> {
    f.credit -= amount
    f.state = 'topping up'
    try {
      await transferFund(this.#clients, { provider: f.provider, amount })
    } catch (err) {
      f.credit += amount
      if (isLedgerShortage(err)) this.#shortage = err
      throw err
    }
    this.#shortage = undefined
    f.movedIn += amount
    if (f.balance !== null) f.balance += amount
    this.#log(`escrow: moved ${formatEther(amount)} 0G of verified work into the sub-account with ${f.provider}`)
  }

  /** Stops funding a provider that disputes too often, starts the refund of what is left, and flags it. */
  #stop(f: Funding): void {
    f.state = 'stopped'
    f.reason = `stopped: ${f.disputed} disputed of ${f.checked} checked`
    this.#log(`escrow: ${f.provider} ${f.reason}; refunding its sub-account`)
    this.#onFlag(f.provider, true)
    if (!this.#opened.has(f.provider.toLowerCase())) return
    void this.#serial(() => retrieveFund(this.#clients, { providers: [f.provider] })).then(
      async () => {
        const account = await getAccount(this.#clients, { user: this.user, provider: f.provider })
        f.balance = account?.balance ?? 0n
        f.pendingRefund = account?.pendingRefund ?? 0n
      },
      (err: Error) => this.#log(`escrow: the refund from ${f.provider} failed: ${err.message}`),
    )
  }

  /**
   * An operator's decision to trust a stopped provider again: its dispute counts start over, the router takes it
   * back, and funding resumes from verified work. False when it was not stopped.
   */
  resume(provider: Address): boolean {
    const f = this.#funding.get(provider.toLowerCase())
    if (f?.state !== 'stopped') return false
    f.state = 'idle'
    f.reason = `resumed after ${f.disputed} disputed of ${f.checked} checked`
    f.checked = 0
    f.disputed = 0
    this.#log(`escrow: ${f.provider} ${f.reason}`)
    this.#onFlag(f.provider, false)
    return true
  }

  /** Rebalances every provider the policy knows that it has not stopped. */
  async rebalanceAll(): Promise<void> {
    const live = [...this.#funding.values()].filter((f) => f.state !== 'stopped')
    await Promise.all(live.map((f) => this.rebalance(f.provider)))
  }

  /** Per provider the policy knows: what is where and why. */
  status(): FundingStatus[] {
    return [...this.#funding.values()].map((f) => {
      const fromProvider = this.#unsettledFee !== undefined && f.polled !== null && f.sincePoll === 0n
      const unsettled = (f.polled ?? 0n) + f.sincePoll
      const expected = f.spend.total()
      return {
        provider: f.provider,
        state: f.state,
        reason: f.reason,
        balance: f.balance,
        pendingRefund: f.pendingRefund,
        unsettled,
        unsettledSource: fromProvider ? 'provider' : 'gateway',
        expected,
        reserve: this.#reserve,
        // As of now, from the figures known (the last rebalance read the chain and asked the provider).
        target: f.state === 'stopped' ? null : unsettled + expected + this.#reserve,
        credit: f.credit,
        verified: f.verified,
        movedIn: f.movedIn,
        checked: f.checked,
        disputed: f.disputed,
        checkedAt: f.checkedAt,
      }
    })
  }
}
