import type { Address } from 'viem'
import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { readOptional } from '../read-optional.ts'

export type Ledger = {
  user: Address
  /** Funds in the main account not moved into sub-accounts, in neuron. */
  availableBalance: bigint
  /** All funds of the ledger, sub-accounts included, in neuron. */
  totalBalance: bigint
  additionalInfo: string
}

/** The user's main account, or undefined when the user has none. */
export function getLedger(clients: ZgClients, params: { user: Address }): Promise<Ledger | undefined> {
  const read = clients.publicClient.readContract({
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'getLedger',
    args: [params.user],
  })
  return readOptional(read, 'LedgerNotExists')
}
