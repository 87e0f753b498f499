import type { Address } from 'viem'
import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Adds `amount` neuron to another address's ledger, paid by the caller. */
export function depositFundFor(
  clients: ZgClients,
  params: { recipient: Address; amount: bigint },
): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'depositFundFor',
    args: [params.recipient],
    value: params.amount,
  })
}
