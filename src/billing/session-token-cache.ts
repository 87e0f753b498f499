import type { Address, LocalAccount } from 'viem'
import { getAccount } from '../chain/actions/get-account.ts'
import type { ZgClients } from '../chain/clients.ts'
import { createSessionToken, MAX_EPHEMERAL_LIFETIME_MS } from './session-token.ts'

type Entry = { token: string; authorization: string; expiresAt: number }

/**
 * Ephemeral 0G session tokens of one wallet, one per provider: built once, signed by the wallet, and reused until
 * less than `refreshBeforeMs` of their life is left (the SDK keeps them until under 1 h remains). A generation
 * change (revokeAllTokens) is handled by `invalidate`: the next token reads the new generation from chain.
 * Concurrent callers share one build.
 */
export class SessionTokenCache {
  readonly #clients: ZgClients
  readonly #account: LocalAccount
  readonly #lifetimeMs: number
  readonly #refreshBeforeMs: number
  readonly #tokens = new Map<string, Entry>()
  readonly #building = new Map<string, Promise<string>>()

  constructor(params: { clients: ZgClients; account: LocalAccount; lifetimeMs?: number; refreshBeforeMs?: number }) {
    this.#clients = params.clients
    this.#account = params.account
    this.#lifetimeMs = params.lifetimeMs ?? MAX_EPHEMERAL_LIFETIME_MS
    this.#refreshBeforeMs = params.refreshBeforeMs ?? Math.min(3_600_000, this.#lifetimeMs / 4)
  }

  get address(): Address {
    return this.#account.address
  }

  /** The `Authorization` value for `provider` (`Bearer app-sk-…`). */
  async authorization(provider: Address): Promise<string> {
    return this.cachedAuthorization(provider) ?? `Bearer ${await this.token(provider)}`
  }

  /**
   * The `Authorization` value for `provider` when a token is at hand and not due for renewal, else undefined (then
   * `authorization()` builds one). Synchronous: a call to a provider already in use awaits nothing for its token.
   */
  cachedAuthorization(provider: Address): string | undefined {
    const cached = this.#tokens.get(provider.toLowerCase())
    return cached && cached.expiresAt - Date.now() > this.#refreshBeforeMs ? cached.authorization : undefined
  }

  token(provider: Address): Promise<string> {
    const key = provider.toLowerCase()
    const cached = this.#tokens.get(key)
    if (cached && cached.expiresAt - Date.now() > this.#refreshBeforeMs) return Promise.resolve(cached.token)
    let building = this.#building.get(key)
    if (!building) {
      building = this.#build(provider).finally(() => this.#building.delete(key))
      this.#building.set(key, building)
    }
    return building
  }

  /** Drops the provider's token, so the next one is built with the generation read fresh from chain. */
  invalidate(provider: Address): void {
    this.#tokens.delete(provider.toLowerCase())
  }

  async #build(provider: Address): Promise<string> {
    const account = await getAccount(this.#clients, { user: this.#account.address, provider })
    const { token, claims } = await createSessionToken({
      account: this.#account,
      provider,
      generation: account?.generation ?? 0n,
      lifetimeMs: this.#lifetimeMs,
    })
    this.#tokens.set(provider.toLowerCase(), { token, authorization: `Bearer ${token}`, expiresAt: claims.expiresAt })
    return token
  }
}
