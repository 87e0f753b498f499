import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'
import type { ZgNetwork } from './networks.ts'
import { rpcFetch } from './rpc-fetch.ts'

export type ZgPublicClient = PublicClient<Transport, Chain>
export type ZgWalletClient = WalletClient<Transport, Chain, Account>

/** A read client for a 0G network, plus a wallet client when an account is given. */
export type ZgClients = {
  network: ZgNetwork
  publicClient: ZgPublicClient
  walletClient?: ZgWalletClient
  /** Told what a transaction is waiting for (the CLI prints it, so a slow chain is not a silent one). */
  progress?: (line: string) => void
}

/** A ZgClients whose wallet is known to be present. */
export type ZgWalletClients = ZgClients & { walletClient: ZgWalletClient }

export function createZgClients(params: { network: ZgNetwork; account: Account }): ZgWalletClients
export function createZgClients(params: { network: ZgNetwork; account?: Account }): ZgClients
export function createZgClients(params: { network: ZgNetwork; account?: Account }): ZgClients {
  const { network, account } = params
  // A failed call must surface at once with its revert reason, not after silent retries.
  const transport = http(network.rpcUrl, { retryCount: 1, timeout: 30_000, fetchFn: rpcFetch() })
  const publicClient = createPublicClient({ chain: network.chain, transport, pollingInterval: 250 }) as ZgPublicClient
  if (!account) return { network, publicClient }
  const walletClient = createWalletClient({ chain: network.chain, transport, account })
  return { network, publicClient, walletClient }
}

/** Throws a clear error when an action that signs is called without a wallet. */
export function requireWallet(clients: Pick<ZgClients, 'walletClient'>): ZgWalletClient {
  if (!clients.walletClient) {
    throw new Error('This action signs a transaction: set ZG_PRIVATE_KEY or pass a key file (--key-file).')
  }
  return clients.walletClient
}
