import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Adds `amount` neuron to the caller's ledger (creating it when missing, where the ledger minimum applies). */
export function depositFund(clients: ZgClients, params: { amount: bigint }): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'depositFund',
    args: [],
    value: params.amount,
  })
}
