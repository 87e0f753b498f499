import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Deletes the caller's ledger; its total balance must be 0. */
export function deleteLedger(clients: ZgClients): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'deleteLedger',
    args: [],
  })
}
