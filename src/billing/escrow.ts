import { type Address, formatEther } from 'viem'
import { acknowledgeTEESigner } from '../chain/actions/acknowledge-tee-signer.ts'
import { getAccount } from '../chain/actions/get-account.ts'
import { transferFund } from '../chain/actions/transfer-fund.ts'
import type { ZgClients } from '../chain/clients.ts'

const ONE_0G = 10n ** 18n

export type EscrowOptions = {
  clients: ZgClients
  /** First transfer into a new sub-account (≥ 1 0G, the contract's minimum to open one). Default 2 0G. */
  initialDeposit?: bigint
  /** Verified fees owed back to a sub-account before a top-up is worth a transaction. Default 0.01 0G. */
  minTopUp?: bigint
  log?: (line: string) => void
}

/**
 * The wallet's escrow policy: a provider's sub-account is opened with a fixed deposit, and afterwards refilled
 * only by the fees of responses the gateway verified. Work that is unverified or disputed is never refunded into
 * escrow, so a provider that stops proving its work runs dry and the router stops picking it. Every chain
 * transaction goes through one queue, since they share the wallet's nonce; none of it runs on the request path
 * except opening a sub-account the first time a provider is used.
 */
export class EscrowManager {
  readonly #clients: ZgClients
  readonly #initial: bigint
  readonly #minTopUp: bigint
  readonly #log: (line: string) => void
  readonly #open = new Map<string, Promise<void>>()
  /** The providers whose opening succeeded. */
  readonly #opened = new Set<string>()
  readonly #credit = new Map<string, bigint>()
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: EscrowOptions) {
    this.#clients = options.clients
    this.#initial = options.initialDeposit ?? 2n * ONE_0G
    this.#minTopUp = options.minTopUp ?? ONE_0G / 100n
    this.#log = options.log ?? (() => {})
  }

  get user(): Address {
    return this.#clients.walletClient!.account.address
  }

  /** Runs chain transactions one at a time. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /** Makes sure a funded, acknowledged sub-account with `provider` exists (once per provider per process). */
  ensureOpen(provider: Address): Promise<void> {
    const key = provider.toLowerCase()
    let opening = this.#open.get(key)
    if (!opening) {
      opening = this.#openAccount(provider)
      opening.then(
        () => this.#opened.add(key),
        () => this.#open.delete(key),
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

  async #openAccount(provider: Address): Promise<void> {
    const account = await getAccount(this.#clients, { user: this.user, provider })
    if (!account) {
      await this.#serial(() => transferFund(this.#clients, { provider, amount: this.#initial }))
      this.#log(`escrow: opened a sub-account with ${provider} (${formatEther(this.#initial)} 0G)`)
      return
    }
    if (!account.acknowledged) {
      await this.#serial(() => acknowledgeTEESigner(this.#clients, { provider, acknowledged: true }))
    }
  }

  /** A response from `provider` was verified: its fee may be refunded into escrow. */
  creditVerified(provider: Address, fee: bigint): void {
    if (fee <= 0n) return
    const key = provider.toLowerCase()
    const credit = (this.#credit.get(key) ?? 0n) + fee
    this.#credit.set(key, credit)
    if (credit >= this.#minTopUp)
      void this.topUp(provider).catch((err) => this.#log(`escrow: top-up failed: ${err.message}`))
  }

  /** Verified fees not yet refunded into the provider's sub-account. */
  credit(provider: Address): bigint {
    return this.#credit.get(provider.toLowerCase()) ?? 0n
  }

  /** Refunds the verified credit into the provider's sub-account now. */
  topUp(provider: Address): Promise<bigint> {
    const key = provider.toLowerCase()
    return this.#serial(async () => {
      const amount = this.#credit.get(key) ?? 0n
      if (amount <= 0n) return 0n
      this.#credit.set(key, 0n)
      try {
        await transferFund(this.#clients, { provider, amount })
      } catch (err) {
        this.#credit.set(key, (this.#credit.get(key) ?? 0n) + amount)
        throw err
      }
      this.#log(`escrow: refunded ${formatEther(amount)} 0G of verified work into the sub-account with ${provider}`)
      return amount
    })
  }
}
