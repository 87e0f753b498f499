import type { Address } from 'viem'
import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Invalidates every session token the caller issued for `provider` (bumps the account generation). */
export function revokeAllTokens(clients: ZgClients, params: { provider: Address }): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'revokeAllTokens',
    args: [params.provider],
  })
}
