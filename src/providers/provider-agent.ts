import { Agent } from 'undici'
import { guardedLookup } from './url-safety.ts'

/**
 * The undici dispatcher for talking to providers. Unless `allowPrivate`, every connection re-checks the addresses
 * the host resolves to (guardedLookup), so a provider whose DNS name flips to a private address after discovery
 * (DNS rebinding) is still refused. undici's `request` does not follow redirects, so a provider cannot bounce the
 * gateway to a private address that way either.
 */
export function createProviderAgent(opts: {
  allowPrivate: boolean
  connectTimeoutMs?: number
  /** Pool tuning for the request path: idle keep-alive and connections per provider. */
  keepAliveTimeoutMs?: number
  connections?: number
}): Agent {
  return new Agent({
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4_000,
    connections: opts.connections ?? null,
    connect: {
      timeout: opts.connectTimeoutMs ?? 10_000,
      ...(opts.allowPrivate ? {} : { lookup: guardedLookup }),
    },
  })
}
