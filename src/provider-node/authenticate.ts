import { LRUCache } from 'lru-cache'
import { type Address, isAddressEqual } from 'viem'
import {
  checkSessionTokenClaims,
  checkSessionTokenRevocation,
  type ParsedSessionToken,
  parseSessionToken,
  recoverSessionTokenSigner,
  SessionTokenError,
} from '../billing/session-token.ts'
import type { ChainView } from './chain-view.ts'
import { ProviderError } from './provider-error.ts'

export type Authenticated = { user: Address; tokenId: number; claims: ParsedSessionToken['claims'] }

/**
 * Tokens already parsed and their signer recovered, by the Authorization header as received: a client sends the
 * same token on call after call (the SDK and the gateway keep one per provider), and neither its parse nor its
 * ecrecover can come out differently for the same bytes. What depends on time and on the chain (expiry, generation,
 * revocation, the account) is checked on every call. Made on first use: an LRU cache allocates its capacity up
 * front, and a process that only imports this module (the gateway's SDK entry) should not pay for it.
 */
type Known = { token: ParsedSessionToken; signer: Address }
let knownCache: LRUCache<string, Known> | undefined
const known = () => (knownCache ??= new LRUCache<string, Known>({ max: 10_000, ttl: 5 * 60_000 }))

/**
 * Validates `Authorization: Bearer app-sk-…` in the 0G provider's order (0g-protocol.md §3.1): shape, provider,
 * ephemeral lifetime, expiry, generation and revocation (from chain, cached), then the signature.
 */
export async function authenticate(
  authorization: string | undefined,
  params: { chain: ChainView; now?: number },
): Promise<Authenticated> {
  try {
    if (!authorization)
      throw new SessionTokenError('malformed', 'missing Authorization header with a 0G session token (Bearer app-sk-…)')
    const seen = known().get(authorization)
    const token = seen?.token ?? parseSessionToken(authorization)
    checkSessionTokenClaims(token, { provider: params.chain.provider, now: params.now })
    const { claims } = token
    // Without a turn of the event loop when the account (or that there is none) was read in the last seconds.
    const now = params.chain.accountNow(claims.address)
    const { account } = now ?? (await params.chain.account(claims.address))
    if (!account) {
      throw new ProviderError(
        403,
        'account_not_found',
        `no sub-account of ${claims.address} with provider ${params.chain.provider}: fund one first (transfer-fund)`,
      )
    }
    checkSessionTokenRevocation(token, account)
    let signer = seen?.signer
    if (!signer) {
      signer = await recoverSessionTokenSigner(token).catch(() => {
        throw new SessionTokenError('bad_signature', 'the session token signature is invalid')
      })
      known().set(authorization, { token, signer })
    }
    if (!isAddressEqual(signer, claims.address)) {
      throw new SessionTokenError('bad_signature', 'the session token is not signed by its address')
    }
    return { user: claims.address, tokenId: claims.tokenId, claims }
  } catch (err) {
    if (err instanceof SessionTokenError)
      throw new ProviderError(401, `invalid_token_${err.code}`, err.message, { type: 'authentication_error' })
    throw err
  }
}
