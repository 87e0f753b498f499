import { LRUCache } from 'lru-cache'
import type { Address } from 'viem'
import { getAccount, type SubAccount } from '../chain/actions/get-account.ts'
import { getService, type Service } from '../chain/actions/get-service.ts'
import type { ZgClients } from '../chain/clients.ts'

/** A missing sub-account is cached too, briefly, so a flood from an unfunded user does not flood the RPC. */
type CachedAccount = { account: SubAccount | undefined }

/**
 * The provider node's cached view of the chain: its own service and its users' sub-accounts. Reads are coalesced
 * (one RPC per key however many requests wait on it) and kept for a short TTL, like the 0G broker's account cache.
 */
export class ChainView {
  readonly clients: ZgClients
  readonly provider: Address
  readonly #accounts: LRUCache<string, CachedAccount>
  #service: { at: number; value: Promise<Service | undefined> } | undefined
  readonly #serviceTtlMs: number

  constructor(params: { clients: ZgClients; provider: Address; accountTtlMs?: number; serviceTtlMs?: number }) {
    this.clients = params.clients
    this.provider = params.provider
    this.#serviceTtlMs = params.serviceTtlMs ?? 10_000
    this.#accounts = new LRUCache<string, CachedAccount>({
      max: 100_000,
      ttl: params.accountTtlMs ?? 5_000,
      fetchMethod: async (user) => ({
        account: await getAccount(this.clients, { user: user as Address, provider: this.provider }),
      }),
    })
  }

  async account(user: Address): Promise<SubAccount | undefined> {
    const cached = await this.#accounts.fetch(user.toLowerCase())
    return cached?.account
  }

  /** Forgets a user's account, so the next read goes to the chain (after a settlement, or a refusal). */
  forget(user: Address): void {
    this.#accounts.delete(user.toLowerCase())
  }

  service(): Promise<Service | undefined> {
    const now = Date.now()
    if (!this.#service || now - this.#service.at > this.#serviceTtlMs) {
      const value = getService(this.clients, { provider: this.provider })
      value.catch(() => {
        if (this.#service?.value === value) this.#service = undefined
      })
      this.#service = { at: now, value }
    }
    return this.#service.value
  }

  forgetService(): void {
    this.#service = undefined
  }
}
