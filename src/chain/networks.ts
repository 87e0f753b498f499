import { type Address, type Chain, defineChain } from 'viem'

/** Where the 0G contracts of one network live. */
export type ContractAddresses = {
  ledger: Address
  inference: Address
  /** FineTuningServing; absent on a chain without fine-tuning. */
  fineTuning?: Address
}

export type ZgNetwork = {
  name: string
  chain: Chain
  rpcUrl: string
  contracts: ContractAddresses
}

// 0G networks and contract addresses: @0gfoundation/0g-compute-ts-sdk 0.9.0 lib.commonjs/constants.js,
// checked against 0g-serving-contract deployments/* (0g-protocol.md §1.1).
export const zgMainnet: Chain = defineChain({
  id: 16661,
  name: '0G Mainnet',
  nativeCurrency: { name: '0G', symbol: '0G', decimals: 18 },
  rpcUrls: { default: { http: ['https://evmrpc.0g.ai'] } },
  blockExplorers: { default: { name: '0G Chainscan', url: 'https://chainscan.0g.ai' } },
})

export const zgTestnet: Chain = defineChain({
  id: 16602,
  name: '0G Galileo Testnet',
  nativeCurrency: { name: '0G', symbol: '0G', decimals: 18 },
  rpcUrls: { default: { http: ['https://evmrpc-testnet.0g.ai'] } },
  blockExplorers: { default: { name: '0G Chainscan Galileo', url: 'https://chainscan-galileo.0g.ai' } },
  testnet: true,
})

export const mainnet: ZgNetwork = {
  name: 'mainnet',
  chain: zgMainnet,
  rpcUrl: 'https://evmrpc.0g.ai',
  contracts: {
    ledger: '0x2dE54c845Cd948B72D2e32e39586fe89607074E3',
    inference: '0x47340d900bdFec2BD393c626E12ea0656F938d84',
    fineTuning: '0x4e3474095518883744ddf135b7E0A23301c7F9c0',
  },
}

export const testnet: ZgNetwork = {
  name: 'testnet',
  chain: zgTestnet,
  rpcUrl: 'https://evmrpc-testnet.0g.ai',
  contracts: {
    ledger: '0xE70830508dAc0A97e6c087c75f402f9Be669E406',
    inference: '0xa79F4c8311FF93C06b8CfB403690cc987c93F91E',
    fineTuning: '0xC6C075D8039763C8f1EbE580be5ADdf2fd6941bA',
  },
}

/** A local chain (the devnet, or any EVM with the 0G contracts deployed). */
export function customNetwork(options: {
  name?: string
  chainId: number
  rpcUrl: string
  contracts: ContractAddresses
}): ZgNetwork {
  const name = options.name ?? 'custom'
  return {
    name,
    chain: defineChain({
      id: options.chainId,
      name,
      nativeCurrency: { name: '0G', symbol: '0G', decimals: 18 },
      rpcUrls: { default: { http: [options.rpcUrl] } },
    }),
    rpcUrl: options.rpcUrl,
    contracts: options.contracts,
  }
}

export const networks = { mainnet, testnet } as const
