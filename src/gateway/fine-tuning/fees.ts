import { ledgerManagerAbi } from '../../chain/abi/index.ts'
import type { ZgClients } from '../../chain/clients.ts'

/**
 * A fine-tuning task's fee as 0G providers quote it: the dataset's tokens, times the price per token, times the
 * epochs (every epoch reads the whole dataset). Neuron, exact.
 */
export function taskFee(tokens: number, pricePerToken: bigint, epochs: number): bigint {
  return BigInt(tokens) * pricePerToken * BigInt(epochs)
}

/** The least the ledger moves into a new sub-account (1 0G on mainnet, 0.01 on testnet): read from the contract. */
export function minTransferAmount(clients: Pick<ZgClients, 'publicClient' | 'network'>): Promise<bigint> {
  return clients.publicClient.readContract({
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'MIN_TRANSFER_AMOUNT',
  })
}
