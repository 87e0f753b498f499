import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Withdraws `amount` neuron from the ledger's available balance to the wallet; the remainder must be 0 or ≥ the minimum. */
export function refund(clients: ZgClients, params: { amount: bigint }): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'refund',
    args: [params.amount],
  })
}
