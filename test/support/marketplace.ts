import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Address, keccak256, type LocalAccount, parseEther, toBytes } from 'viem'
import { createInsecureDevSigner } from '../../src/attestation/dev-signer.ts'
import type { TeeSigner } from '../../src/attestation/tee-signer.ts'
import { createSessionToken } from '../../src/billing/session-token.ts'
import { acknowledgeTEESignerByOwner } from '../../src/chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addLedger } from '../../src/chain/actions/add-ledger.ts'
import { addOrUpdateService } from '../../src/chain/actions/add-or-update-service.ts'
import { getAccount } from '../../src/chain/actions/get-account.ts'
import { transferFund } from '../../src/chain/actions/transfer-fund.ts'
import type { ZgWalletClients } from '../../src/chain/clients.ts'
import type { ZgNetwork } from '../../src/chain/networks.ts'
import type { Anvil } from '../../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL, startDevBackend } from '../../src/devnet/backends/index.ts'
import type { DeployedContracts } from '../../src/devnet/deploy.ts'
import { type ProviderNode, startProviderNode } from '../../src/provider-node/server.ts'
import { startTestChain } from './chain.ts'

export const PRICES = { inputPrice: 1_000_000_000n, outputPrice: 2_000_000_000n }

/** A whole local marketplace for tests: anvil with the real contracts, a dev backend, one provider node, a funded user. */
export type Marketplace = {
  anvil: Anvil
  network: ZgNetwork
  contracts: DeployedContracts
  owner: ZgWalletClients
  provider: ZgWalletClients
  user: ZgWalletClients
  signer: TeeSigner
  backend: Awaited<ReturnType<typeof startDevBackend>>
  /** The in-process provider node (absent with startNode: false). */
  node: ProviderNode
  dataDir: string
  /** Registers the provider's service at `url` and has the owner acknowledge its signer. */
  register(url: string, signerAddress: Address): Promise<void>
  clientsOf(i: number): ZgWalletClients
  /** An ephemeral session token of `who` (default: the user) for the provider. */
  token(
    who?: ZgWalletClients,
    opts?: { tokenId?: number; lifetimeMs?: number; now?: number; provider?: Address },
  ): Promise<string>
  /** A token signed by hand with these claims over the user's defaults: for claims our builder refuses to make. */
  rawToken(who: ZgWalletClients, claims: Record<string, unknown>): Promise<string>
  /** Opens a funded sub-account with the provider for anvil account `i`. */
  fund(who: ZgWalletClients, ledger?: bigint, subAccount?: bigint): Promise<void>
  stop(): Promise<void>
}

export async function startMarketplace(
  opts: {
    lockTime?: bigint
    reserve?: bigint
    tokenDelayMs?: number
    startNode?: boolean
    jsonBodyLimit?: number
    serviceCacheTtlMs?: number
  } = {},
): Promise<Marketplace> {
  const dataDir = mkdtempSync(join(tmpdir(), 'zg-market-'))
  const { anvil, network, contracts, clientsOf } = await startTestChain({ lockTime: opts.lockTime ?? 3600n })
  const owner = clientsOf(0)
  const provider = clientsOf(2)
  const user = clientsOf(1)
  const signer = await createInsecureDevSigner({ keyFile: join(dataDir, 'signer.key') })
  const backend = await startDevBackend({ port: 0, tokenDelayMs: opts.tokenDelayMs ?? 0 })
  const register = async (url: string, signerAddress: Address) => {
    await addOrUpdateService(provider, {
      service: {
        serviceType: 'chatbot',
        url,
        model: DEV_CHAT_MODEL,
        verifiability: 'TeeML',
        ...PRICES,
        additionalInfo: JSON.stringify({ TEEVerifier: 'insecure-dev', TargetSeparated: false }),
        teeSignerAddress: signerAddress,
      },
      stake: parseEther('100'),
    })
    await acknowledgeTEESignerByOwner(owner, { provider: provider.walletClient.account.address })
  }
  const node =
    opts.startNode === false
      ? (undefined as unknown as ProviderNode)
      : await startProviderNode({
          clients: provider,
          backendUrl: backend.url,
          signer,
          dataDir: join(dataDir, 'provider'),
          reserve: opts.reserve,
          jsonBodyLimit: opts.jsonBodyLimit,
          settleIntervalMs: 0,
          accountCacheTtlMs: 300,
          serviceCacheTtlMs: opts.serviceCacheTtlMs,
          log: () => {},
        })
  if (node) await register(node.url, signer.address)

  const fund = async (who: ZgWalletClients, ledger = parseEther('10'), sub = parseEther('5')) => {
    await addLedger(who, { amount: ledger })
    await transferFund(who, { provider: provider.walletClient.account.address, amount: sub })
  }
  await fund(user)

  return {
    anvil,
    network,
    contracts,
    owner,
    provider,
    user,
    signer,
    backend,
    node,
    dataDir,
    register,
    clientsOf,
    fund,
    async token(who = user, o = {}) {
      const providerAddress = o.provider ?? provider.walletClient.account.address
      const account = await getAccount(who, { user: who.walletClient.account.address, provider: providerAddress })
      const { token } = await createSessionToken({
        account: who.walletClient.account as LocalAccount,
        provider: providerAddress,
        generation: account?.generation ?? 0n,
        tokenId: o.tokenId,
        lifetimeMs: o.lifetimeMs,
        now: o.now,
      })
      return token
    },
    async rawToken(who, overrides) {
      const now = Date.now()
      const claims = {
        address: who.walletClient.account.address,
        provider: provider.walletClient.account.address,
        timestamp: now,
        expiresAt: now + 3_600_000,
        nonce: 'hand-made-token-nonce-0000000000',
        generation: 0,
        tokenId: 255,
        ...overrides,
      }
      const raw = JSON.stringify(claims)
      const signature = await (who.walletClient.account as LocalAccount).signMessage({
        message: { raw: keccak256(toBytes(raw)) },
      })
      return `app-sk-${Buffer.from(`${raw}|${signature}`).toString('base64')}`
    },
    async stop() {
      await node?.close()
      await backend.close()
      await anvil.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
