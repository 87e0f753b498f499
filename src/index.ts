/**
 * zg-gateway as a library: embed the OpenAI-compatible 0G gateway, run a provider node, or drive the 0G contracts.
 *
 * @example
 * import { createGateway, networks } from 'zg-gateway'
 * import { privateKeyToAccount } from 'viem/accounts'
 * const gateway = await createGateway({ network: networks.testnet, wallet: privateKeyToAccount(key), dataDir: '.zg' })
 * // POST gateway.url + '/v1/chat/completions', or mount gateway.fetch in your own server.
 */
import {
  closeGatewayCore,
  createGatewayCore,
  type Gateway,
  type GatewayOptions,
  startGateway,
} from './gateway/server.ts'

export { verifyResponseSignature } from './attestation/response-signature.ts'
export type { Receipt } from './attestation/response-verifier.ts'
export { verifyDelivery } from './attestation/response-verifier.ts'
export { createSessionToken, parseSessionToken } from './billing/session-token.ts'
export * from './chain/index.ts'
export type { DevStack, DevStackOptions } from './devnet/dev-stack.ts'
export type { Gateway, GatewayOptions } from './gateway/server.ts'
export type { ProviderNode, ProviderNodeOptions } from './provider-node/server.ts'
export { ProviderCatalog } from './providers/catalog.ts'

/** The gateway embedded without a listener: mount `fetch` in your own HTTP server. */
export type EmbeddedGateway = {
  /** A standard fetch handler: `(Request) => Promise<Response>`. */
  fetch: (request: Request) => Promise<Response>
  /** Stops its background work (catalog refresh, records, connections). */
  close(): Promise<void>
}

/**
 * Starts the gateway in this process, listening on `port` (default 8080). With `listen: false` nothing listens: use
 * `fetch` from your own HTTP server, and `close()` to stop its background work.
 */
export async function createGateway(options: GatewayOptions & { listen?: true }): Promise<Gateway>
export async function createGateway(options: GatewayOptions & { listen: false }): Promise<EmbeddedGateway>
export async function createGateway(
  options: GatewayOptions & { listen?: boolean },
): Promise<Gateway | EmbeddedGateway> {
  if (options.listen !== false) return startGateway(options)
  const { core, stores, app } = await createGatewayCore(options)
  return {
    fetch: async (request) => app.fetch(request),
    close: () => closeGatewayCore(core, stores),
  }
}

// Loaded when called: a process that embeds the gateway does not carry the dev stack or the provider node.

/** Starts the whole marketplace on this machine (anvil, the 0G contracts, provider nodes, a funded wallet). */
export const startDevStack: typeof import('./devnet/dev-stack.ts').startDevStack = async (options) =>
  (await import('./devnet/dev-stack.ts')).startDevStack(options)

/** Starts a provider node in front of an OpenAI-compatible backend. */
export const startProviderNode: typeof import('./provider-node/server.ts').startProviderNode = async (options) =>
  (await import('./provider-node/server.ts')).startProviderNode(options)
