import { type Address, formatEther } from 'viem'
import type { Service } from '../chain/actions/get-service.ts'
import type { AccountState, ChainView } from './chain-view.ts'
import { ProviderError } from './provider-error.ts'
import type { UsageStore } from './usage-store.ts'

/** The balance a sub-account must keep on top of what it owes: the 0G broker's MinimumLockedBalance (1 0G). */
export const DEFAULT_RESERVE = 10n ** 18n

const g = (neuron: bigint) => `${formatEther(neuron)} 0G`

/**
 * Decides whether a user's request may reach the backend: the service's TEE signer is acknowledged, the user's
 * sub-account exists and is acknowledged, and `balance − pendingRefund ≥ unsettled fees + requests in flight +
 * this request's estimate + reserve`. Requests in flight hold their estimate until they are recorded, so a burst
 * of concurrent calls cannot overdraw an account between two settlements (the estimate being the call's worst case:
 * see worstCaseFee).
 *
 * The unsettled fees are the store's: with several nodes on one Postgres store, every node's records, read at most
 * UNSETTLED_TTL_MS ago plus this node's own since (what other nodes hold in flight, and recorded within that TTL, is
 * not seen: the reserve covers it; docs/provider-scaling.md).
 *
 * While the chain cannot be read, the account last read serves (ChainView's stale-if-error), but only up to
 * `staleRiskLimit` of estimates per user on one stale read: past it, a 503 `chain_unavailable`. What the user did
 * on-chain meanwhile (a refund request) is unseen, and this bounds what the node can lose to it.
 */
export class Admission {
  readonly #chain: ChainView
  readonly #store: UsageStore
  readonly #reserve: bigint
  readonly #staleRiskLimit: bigint
  readonly #inFlight = new Map<string, bigint>()
  /** Per user (lower-case): estimates admitted on a stale account, and the read they were admitted on. */
  readonly #staleAdmitted = new Map<string, { readAt: number; admitted: bigint }>()

  /** `staleRiskLimit` defaults to the reserve: the margin the protocol keeps beyond what a user owes. */
  constructor(params: { chain: ChainView; store: UsageStore; reserve?: bigint; staleRiskLimit?: bigint }) {
    this.#chain = params.chain
    this.#store = params.store
    this.#reserve = params.reserve ?? DEFAULT_RESERVE
    this.#staleRiskLimit = params.staleRiskLimit ?? this.#reserve
  }

  /**
   * The node's own service, as every paid call needs it (its prices): a 503 while none is registered or its TEE
   * signer is not acknowledged. Synchronous while the service read is fresh (a cold call's path awaits nothing).
   */
  service(): Service | Promise<Service> {
    const now = this.#chain.serviceNow()
    return now ? servable(now.service) : this.#chain.service().then(servable)
  }

  /**
   * Admits the request or throws a ProviderError; the returned function releases the hold (call it once).
   * Synchronous when the user's account is cached and covers the request; otherwise (not cached, or short: a
   * refusal re-reads the account once, the user may just have topped it up) it reads the chain. Call it after
   * {@link service}.
   */
  admit(user: Address, estimate: bigint): Release | Promise<Release> {
    const cached = this.#chain.accountNow(user)
    const owed = this.#store.unsettledFee(user)
    const fromCache = (read: bigint) => (cached ? this.#hold(user, estimate, cached, read, false) : undefined)
    if (owed instanceof Promise)
      return owed.then((read) => fromCache(read) ?? this.#admitFromChain(user, estimate, cached !== undefined))
    return fromCache(owed) ?? this.#admitFromChain(user, estimate, cached !== undefined)
  }

  async #admitFromChain(user: Address, estimate: bigint, reread: boolean): Promise<Release> {
    const first = await this.#chain.account(user, { refresh: reread })
    const release = this.#hold(user, estimate, first, await this.#store.unsettledFee(user), reread)
    if (release) return release
    const last = await this.#chain.account(user, { refresh: true })
    return this.#hold(user, estimate, last, await this.#store.unsettledFee(user), true)
  }

  /**
   * What the user owes now: `read` (awaited just before) unless a fresher sum is at hand synchronously, which counts
   * what this node recorded and released while the read was awaited.
   */
  #owed(user: Address, read: bigint): bigint {
    const now = this.#store.unsettledFee(user)
    return typeof now === 'bigint' ? now : read
  }

  /**
   * Holds the estimate if `account` covers it; undefined if it falls short and `final` is false (the caller reads
   * the account afresh and asks again); a ProviderError if it cannot be admitted.
   */
  #hold(user: Address, estimate: bigint, state: AccountState, read: bigint, final: true): Release
  #hold(user: Address, estimate: bigint, state: AccountState, read: bigint, final: boolean): Release | undefined
  #hold(user: Address, estimate: bigint, state: AccountState, read: bigint, final: boolean): Release | undefined {
    const { account } = state
    if (!account) {
      throw new ProviderError(
        403,
        'account_not_found',
        `no sub-account of ${user} with provider ${this.#chain.provider}`,
      )
    }
    if (!account.acknowledged) {
      throw new ProviderError(
        403,
        'account_not_acknowledged',
        'user not acknowledge the provider, please use acknowledgeProviderSigner function in sdk first',
      )
    }
    const key = user.toLowerCase()
    const available = account.balance - account.pendingRefund
    const unsettled = this.#owed(user, read)
    const required = unsettled + (this.#inFlight.get(key) ?? 0n) + estimate + this.#reserve
    if (available < required) {
      if (!final) return undefined
      const topUp = required - available
      throw new ProviderError(
        402,
        'insufficient_balance',
        `insufficient balance: your locked balance is ${g(available)}, but the required minimum is ${g(required)} ` +
          `(unsettled fees ${g(unsettled)} + requests in flight ${g(this.#inFlight.get(key) ?? 0n)} + this request's estimate ${g(estimate)} + reserve ${g(this.#reserve)}; ` +
          'an estimate is the most the call may cost: for chat and completions, the prompt plus max_tokens × n of output). ' +
          `Please add more funds with: 0g-compute-cli transfer-fund --provider ${this.#chain.provider} --amount ${formatEther(topUp)} ` +
          `(or zg-gateway account transfer --provider ${this.#chain.provider} --amount ${formatEther(topUp)})`,
      )
    }
    if (state.stale) this.#takeStaleRisk(user, key, estimate, state.readAt)
    else if (this.#staleAdmitted.size) this.#staleAdmitted.delete(key)
    this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0n) + estimate)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.#inFlight.get(key) ?? 0n) - estimate
      if (left > 0n) this.#inFlight.set(key, left)
      else this.#inFlight.delete(key)
    }
  }

  /** Counts the estimate against the user's stale-risk limit, or refuses with a 503 when it would pass it. */
  #takeStaleRisk(user: Address, key: string, estimate: bigint, readAt: number): void {
    const taken = this.#staleAdmitted.get(key)
    const admitted = taken?.readAt === readAt ? taken.admitted : 0n
    if (admitted + estimate > this.#staleRiskLimit) {
      throw new ProviderError(
        503,
        'chain_unavailable',
        `the chain cannot be read right now: this node admits calls on ${user}'s sub-account as last read ` +
          `(${Math.round((Date.now() - readAt) / 1000)} s ago) only up to ${g(this.#staleRiskLimit)}, and has admitted ` +
          `${g(admitted)}; this call may cost up to ${g(estimate)}. Try again later`,
        { headers: { 'retry-after': '5' } },
      )
    }
    this.#staleAdmitted.set(key, { readAt, admitted: admitted + estimate })
  }
}

/** Releases an admitted request's hold on its user's balance. */
export type Release = () => void

function servable(service: Service | undefined): Service {
  if (!service)
    throw new ProviderError(503, 'service_not_registered', 'this provider has no service registered on-chain')
  if (!service.teeSignerAcknowledged) {
    throw new ProviderError(
      503,
      'signer_not_acknowledged',
      "the provider's TEE signer is not acknowledged on-chain yet, so its work cannot be settled; try again later",
    )
  }
  return service
}
