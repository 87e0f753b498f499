import type { Address } from 'viem'
import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'
import { getServiceName } from './get-service-name.ts'

/**
 * For each provider: releases matured refunds to the ledger, then starts a refund of the rest of the sub-account
 * (locked for the contract's lock time). Call again after the lock to release it.
 */
export async function retrieveFund(
  clients: ZgClients,
  params: { providers: readonly Address[]; serviceName?: string },
): Promise<WriteResult> {
  const serviceName = params.serviceName ?? (await getServiceName(clients))
  return writeContract(clients, {
    address: clients.network.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'retrieveFund',
    args: [params.providers, serviceName],
  })
}
