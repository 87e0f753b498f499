import { LRUCache } from 'lru-cache'
import { type Address, createPublicClient, http } from 'viem'
import { getAccount, type SubAccount } from '../chain/actions/get-account.ts'
import { getService, type Service } from '../chain/actions/get-service.ts'
import type { ZgClients, ZgPublicClient } from '../chain/clients.ts'
import { rpcFetch } from '../chain/rpc-fetch.ts'
import { ProviderError } from './provider-error.ts'

/** A user's sub-account as last read (`account` undefined: known to have none), and when. */
export type AccountState = {
  account: SubAccount | undefined
  /** When the read that gave it started (ms since the epoch): admission's stale-risk count is kept per read. */
  readAt: number
  /** Past its TTL: served because the chain did not answer within the read budget. */
  stale: boolean
}

export type ServiceState = { service: Service | undefined; readAt: number; stale: boolean }

export type ChainViewOptions = {
  clients: ZgClients
  provider: Address
  /** How long a sub-account read is trusted as fresh (default 5 s). */
  accountTtlMs?: number
  /** How long the service read is trusted as fresh (default 10 s). */
  serviceTtlMs?: number
  /** The longest a request waits on the chain (default 2 s); past it, the last known state serves. */
  readBudgetMs?: number
  /** How old a last known state may be and still serve while the chain cannot be read (default 10 min). */
  maxStaleMs?: number
}

/** A read of the chain is given up after this long (the chain clients' own is 30 s, retried once) and tried again. */
const READ_TIMEOUT_MS = 10_000
/** After a failed read, the same key is not read again for this long: an outage costs one RPC a second per key. */
const RETRY_GAP_MS = 1_000

type Policy = { ttlMs: number; budgetMs: number; maxStaleMs: number }
/** Shared by every read: whether the chain is known to be failing (its last read failed or was slower than the budget). */
type Health = { down: boolean }

/** How a read value is handed out: made once per read, fresh and stale, so serving one allocates nothing. */
type Wrap<T, S> = (value: T, readAt: number, stale: boolean) => S

/**
 * One value read from the chain, with stale-if-error: fresh within its TTL; past it, read again (one read at a time,
 * however many requests wait), a request waiting at most the budget. When the read fails or is slow, the last known
 * value serves, within `maxStaleMs`, and while the chain is known to be failing it serves at once, the read going on
 * behind it. Past that bound, or with nothing known, a 503 `chain_unavailable`.
 */
class ChainRead<T, S> {
  #known: { at: number; fresh: S; stale: S } | undefined
  #reading: Promise<S> | undefined
  #failedAt = Number.NEGATIVE_INFINITY
  readonly #read: () => Promise<T>
  readonly #wrap: Wrap<T, S>
  readonly #policy: Policy
  readonly #health: Health
  readonly #what: string

  constructor(read: () => Promise<T>, wrap: Wrap<T, S>, policy: Policy, health: Health, what: string) {
    this.#read = read
    this.#wrap = wrap
    this.#policy = policy
    this.#health = health
    this.#what = what
  }

  /** The value when it can serve without waiting: fresh, or stale while the chain is known to be failing. */
  now(): S | undefined {
    const k = this.#known
    if (!k) return undefined
    const age = Date.now() - k.at
    if (age <= this.#policy.ttlMs) return k.fresh
    if (this.#health.down && age <= this.#policy.maxStaleMs) {
      this.#refresh()
      return k.stale
    }
    return undefined
  }

  /** The value, read afresh if it is not fresh (or `refresh`), waiting at most the budget. */
  async get(refresh = false): Promise<S> {
    if (!refresh) {
      const now = this.now()
      if (now) return now
    } else if (this.#health.down) {
      const stale = this.#staleOrUndefined()
      if (stale) {
        this.#refresh()
        return stale
      }
    }
    const reading = this.#refresh()
    if (reading) {
      let timer: NodeJS.Timeout | undefined
      const outcome = await Promise.race([
        reading.then(
          (state) => ({ state }),
          () => undefined,
        ),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), this.#policy.budgetMs)
        }),
      ])
      clearTimeout(timer)
      if (outcome) return outcome.state
      this.#health.down = true
    }
    const stale = this.#staleOrUndefined()
    if (stale) return stale
    const known = this.#known
    throw new ProviderError(
      503,
      'chain_unavailable',
      known
        ? `the chain cannot be read, and ${this.#what} this node last read is ${Math.round((Date.now() - known.at) / 1000)} s old, more than it admits calls on; try again later`
        : `the chain cannot be read right now, and this node does not know ${this.#what} yet; try again later`,
      { headers: { 'retry-after': '5' } },
    )
  }

  forget(): void {
    this.#known = undefined
  }

  #staleOrUndefined(): S | undefined {
    const k = this.#known
    return k && Date.now() - k.at <= this.#policy.maxStaleMs ? k.stale : undefined
  }

  /** The read under way, or a new one; undefined if one failed less than RETRY_GAP_MS ago. */
  #refresh(): Promise<S> | undefined {
    if (this.#reading) return this.#reading
    if (Date.now() - this.#failedAt < RETRY_GAP_MS) return undefined
    const started = Date.now()
    const reading = this.#read().then(
      (value) => {
        const known = { at: started, fresh: this.#wrap(value, started, false), stale: this.#wrap(value, started, true) }
        this.#known = known
        this.#health.down = false
        return known.fresh
      },
      (err: unknown) => {
        this.#failedAt = Date.now()
        this.#health.down = true
        throw err
      },
    )
    this.#reading = reading
    const done = () => {
      this.#reading = undefined
    }
    reading.then(done, done)
    return reading
  }
}

/**
 * The provider node's cached view of the chain: its own service and its users' sub-accounts. Reads are coalesced
 * (one RPC per key however many requests wait on it) and kept for a short TTL, like the 0G broker's account cache.
 * When the chain cannot be read (an RPC outage or stall), the last known state serves for up to `maxStaleMs`,
 * flagged stale, and no request waits on the chain longer than the read budget.
 */
export class ChainView {
  readonly provider: Address
  readonly #reads: ZgClients
  readonly #accounts: LRUCache<string, ChainRead<SubAccount | undefined, AccountState>>
  readonly #service: ChainRead<Service | undefined, ServiceState>
  readonly #accountPolicy: Policy
  readonly #health: Health = { down: false }

  constructor(params: ChainViewOptions) {
    this.provider = params.provider
    // Reads of their own, without the clients' long timeout and retry: a stalled RPC is given up on and read again.
    const { network } = params.clients
    const publicClient = createPublicClient({
      chain: network.chain,
      transport: http(network.rpcUrl, { retryCount: 0, timeout: READ_TIMEOUT_MS, fetchFn: rpcFetch() }),
    }) as ZgPublicClient
    this.#reads = { network, publicClient }
    const budgetMs = params.readBudgetMs ?? 2_000
    const maxStaleMs = params.maxStaleMs ?? 600_000
    this.#accountPolicy = { ttlMs: params.accountTtlMs ?? 5_000, budgetMs, maxStaleMs }
    this.#accounts = new LRUCache({ max: 100_000 })
    this.#service = new ChainRead(
      () => getService(this.#reads, { provider: this.provider }),
      (service, readAt, stale): ServiceState => ({ service, readAt, stale }),
      { ttlMs: params.serviceTtlMs ?? 10_000, budgetMs, maxStaleMs },
      this.#health,
      'its own service',
    )
  }

  #accountRead(user: Address): ChainRead<SubAccount | undefined, AccountState> {
    const key = user.toLowerCase()
    let read = this.#accounts.get(key)
    if (!read) {
      read = new ChainRead(
        () => getAccount(this.#reads, { user: key as Address, provider: this.provider }),
        (account, readAt, stale): AccountState => ({ account, readAt, stale }),
        this.#accountPolicy,
        this.#health,
        `the sub-account of ${user}`,
      )
      this.#accounts.set(key, read)
    }
    return read
  }

  /**
   * The user's account, read afresh if it is not fresh (or `refresh`: after a refusal, the user may just have
   * topped up), waiting at most the read budget; the last known one, flagged stale, when the chain does not answer.
   * Throws a 503 `chain_unavailable` when nothing recent enough is known.
   */
  async account(user: Address, opts: { refresh?: boolean } = {}): Promise<AccountState> {
    return this.#accountRead(user).get(opts.refresh)
  }

  /**
   * The user's account when it serves without waiting: fresh, or the last known one while the chain is failing;
   * undefined when it must be read (`account()`). A call of a user seen in the last seconds then awaits nothing.
   */
  accountNow(user: Address): AccountState | undefined {
    return this.#accounts.get(user.toLowerCase())?.now()
  }

  /** The node's own service (undefined: none registered), as `account()` reads. */
  async service(): Promise<Service | undefined> {
    return (await this.#service.get()).service
  }

  /** The service when it serves without waiting (`{ service: undefined }`: none registered); else undefined. */
  serviceNow(): ServiceState | undefined {
    return this.#service.now()
  }

  forgetService(): void {
    this.#service.forget()
  }
}
