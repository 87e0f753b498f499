import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Creates the caller's ledger (main account) funded with `amount` neuron (≥ 3 0G on mainnet, 0.1 0G on testnet). */
export function addLedger(
  clients: ZgClients,
  params: { amount: bigint; additionalInfo?: string },
): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'addLedger',
    args: [params.additionalInfo ?? ''],
    value: params.amount,
  })
}
