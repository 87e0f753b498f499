import type { Address } from 'viem'
import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { getServiceName } from './get-service-name.ts'

/** The providers the user has a sub-account with, for the inference service. */
export async function getLedgerProviders(
  clients: ZgClients,
  params: { user: Address; serviceName?: string },
): Promise<readonly Address[]> {
  const serviceName = params.serviceName ?? (await getServiceName(clients))
  return clients.publicClient.readContract({
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'getLedgerProviders',
    args: [params.user, serviceName],
  })
}
