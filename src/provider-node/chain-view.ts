import { LRUCache } from 'lru-cache'
import type { Address } from 'viem'
import { getAccount, type SubAccount } from '../chain/actions/get-account.ts'
import { getService, type Service } from '../chain/actions/get-service.ts'
import type { ZgClients } from '../chain/clients.ts'

/** A missing sub-account is cached too, briefly, so a flood from an unfunded user does not flood the RPC. */
export type CachedAccount = { account: SubAccount | undefined }

/** The service read and when; `read` once it resolved (what `serviceNow()` hands out). */
type ServiceRead = { at: number; value: Promise<Service | undefined>; read?: { service: Service | undefined } }

/**
 * The provider node's cached view of the chain: its own service and its users' sub-accounts. Reads are coalesced
 * (one RPC per key however many requests wait on it) and kept for a short TTL, like the 0G broker's account cache.
 */
export class ChainView {
  readonly clients: ZgClients
  readonly provider: Address
  readonly #accounts: LRUCache<string, CachedAccount>
  #service: ServiceRead | undefined
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

  /**
   * The user's account when it is cached and fresh, without waiting (`{ account: undefined }`: known to have none);
   * undefined when it must be read (`account()`). A call of a user seen in the last seconds then awaits nothing.
   */
  accountNow(user: Address): CachedAccount | undefined {
    return this.#accounts.get(user.toLowerCase())
  }

  /** Forgets a user's account, so the next read goes to the chain (after a settlement, or a refusal). */
  forget(user: Address): void {
    this.#accounts.delete(user.toLowerCase())
  }

  service(): Promise<Service | undefined> {
    const now = Date.now()
    if (!this.#service || now - this.#service.at > this.#serviceTtlMs) {
      const value = getService(this.clients, { provider: this.provider })
      const entry: ServiceRead = { at: now, value }
      value.then(
        (service) => {
          entry.read = { service }
        },
        () => {
          if (this.#service === entry) this.#service = undefined
        },
      )
      this.#service = entry
    }
    return this.#service.value
  }

  /**
   * The service when it is read and fresh, without waiting (`{ service: undefined }`: none registered); undefined
   * when it must be read (`service()`).
   */
  serviceNow(): { service: Service | undefined } | undefined {
    const entry = this.#service
    return entry && Date.now() - entry.at <= this.#serviceTtlMs ? entry.read : undefined
  }

  forgetService(): void {
    this.#service = undefined
  }
}
