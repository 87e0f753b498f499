import type { Address } from 'viem'
import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Contract owner only: acknowledges the TEE signer registered on the provider's service. */
export function acknowledgeTEESignerByOwner(clients: ZgClients, params: { provider: Address }): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'acknowledgeTEESignerByOwner',
    args: [params.provider],
  })
}
