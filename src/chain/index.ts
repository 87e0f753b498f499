export * from './abi/index.ts'
export * from './actions/index.ts'
export {
  createZgClients,
  requireWallet,
  type ZgClients,
  type ZgPublicClient,
  type ZgWalletClient,
  type ZgWalletClients,
} from './clients.ts'
export { decodeZgRevert, toZgError, ZgContractError } from './errors.ts'
export {
  type ContractAddresses,
  customNetwork,
  mainnet,
  networks,
  testnet,
  type ZgNetwork,
  zgMainnet,
  zgTestnet,
} from './networks.ts'
export { format0G, NEURON_PER_0G, parse0G } from './units.ts'
export { loadWallet } from './wallet.ts'
export { type WriteResult, writeContract } from './write-contract.ts'
