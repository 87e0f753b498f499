import type { Address } from 'viem'
import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'
import { getServiceName } from './get-service-name.ts'

/**
 * Moves `amount` neuron from the ledger into the sub-account with `provider`. A new sub-account needs ≥ 1 0G
 * (0.01 on testnet) and is acknowledged automatically; on an existing one, pending refunds are cancelled first (LIFO).
 */
export async function transferFund(
  clients: ZgClients,
  params: { provider: Address; amount: bigint; serviceName?: string },
): Promise<WriteResult> {
  const serviceName = params.serviceName ?? (await getServiceName(clients))
  return writeContract(clients, {
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'transferFund',
    args: [params.provider, serviceName, params.amount],
  })
}
