import type { Address } from 'viem'
import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Revokes one persistent session token id (0–254) the caller issued for `provider`. */
export function revokeToken(clients: ZgClients, params: { provider: Address; tokenId: number }): Promise<WriteResult> {
  if (!Number.isInteger(params.tokenId) || params.tokenId < 0 || params.tokenId > 254) {
    throw new RangeError(`token id must be an integer from 0 to 254, got ${params.tokenId}`)
  }
  return writeContract(clients, {
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'revokeToken',
    args: [params.provider, params.tokenId],
  })
}
