import { resolve } from 'node:path'
import type { Address, PrivateKeyAccount } from 'viem'
import { createZgClients, type ZgClients } from '../chain/clients.ts'
import { customNetwork, networks, type ZgNetwork } from '../chain/networks.ts'
import { loadWallet } from '../chain/wallet.ts'
import { anvilAccount } from '../devnet/anvil.ts'
import { readDevnetInfo } from '../devnet/devnet.ts'
import { type Options, UsageError, type Values } from './command.ts'

/** Which chain and which wallet: shared by every command that talks to the 0G contracts. */
export const networkOptions: Options = {
  network: {
    type: 'string',
    description:
      'mainnet | testnet | devnet | an RPC URL (with --ledger-ca and --inference-ca); default: devnet (ZG_NETWORK)',
  },
  'ledger-ca': { type: 'string', description: 'LedgerManager address, with an RPC URL network' },
  'inference-ca': { type: 'string', description: 'InferenceServing address, with an RPC URL network' },
  'fine-tuning-ca': {
    type: 'string',
    description: 'FineTuningServing address, with an RPC URL network (fine-tuning is off without one)',
  },
  'data-dir': { type: 'string', description: 'state directory holding devnet.json (ZG_DATA_DIR; default .zg)' },
  'key-file': { type: 'string', description: 'file holding the wallet private key (default: ZG_PRIVATE_KEY)' },
}

/** The devnet's dev wallet (anvil account 1): used on the devnet when no key is given. */
export const DEV_WALLET_INDEX = 1

export function dataDirOf(values: Values): string {
  return resolve((values['data-dir'] as string | undefined) ?? process.env.ZG_DATA_DIR ?? '.zg')
}

export async function resolveNetwork(values: Values): Promise<ZgNetwork> {
  const name = (values.network as string | undefined) ?? process.env.ZG_NETWORK ?? 'devnet'
  if (name === 'mainnet' || name === 'testnet') return networks[name]
  if (name === 'devnet') {
    const dataDir = dataDirOf(values)
    const info = await readDevnetInfo(dataDir)
    if (!info) throw new UsageError(`No devnet found in ${dataDir} (devnet.json). Start one with: npm start`)
    return customNetwork({
      name: 'devnet',
      chainId: info.chainId,
      rpcUrl: info.rpcUrl,
      contracts: {
        ledger: info.contracts.ledger,
        inference: info.contracts.inference,
        ...(info.contracts.fineTuning && { fineTuning: info.contracts.fineTuning }),
      },
    })
  }
  if (/^https?:\/\//.test(name)) {
    const ledger = values['ledger-ca'] as Address | undefined
    const inference = values['inference-ca'] as Address | undefined
    if (!ledger || !inference) throw new UsageError('An RPC URL network needs --ledger-ca and --inference-ca')
    const { createPublicClient, http } = await import('viem')
    const chainId = await createPublicClient({ transport: http(name) }).getChainId()
    const fineTuning = values['fine-tuning-ca'] as Address | undefined
    return customNetwork({ chainId, rpcUrl: name, contracts: { ledger, inference, ...(fineTuning && { fineTuning }) } })
  }
  throw new UsageError(`Unknown network "${name}": use mainnet, testnet, devnet or an http(s) RPC URL`)
}

export async function resolveWallet(values: Values, network: ZgNetwork): Promise<PrivateKeyAccount | undefined> {
  const keyFile = values['key-file'] as string | undefined
  const wallet = await loadWallet({ keyFile })
  if (wallet || network.name !== 'devnet') return wallet
  return anvilAccount(DEV_WALLET_INDEX)
}

/** Clients for the chosen network; with `needWallet`, a usage error when no key is configured. */
export async function clientsFrom(values: Values, needWallet: boolean): Promise<ZgClients & { address?: Address }> {
  const network = await resolveNetwork(values)
  const account = await resolveWallet(values, network)
  if (needWallet && !account) {
    throw new UsageError('No wallet: set ZG_PRIVATE_KEY or pass --key-file')
  }
  // Progress goes to stderr, so stdout stays the answer (and --json stays parseable).
  const progress = values.json ? undefined : (line: string) => process.stderr.write(`${line}\n`)
  return { ...createZgClients({ network, account }), address: account?.address, progress }
}
