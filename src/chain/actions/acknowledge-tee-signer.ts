import type { Address } from 'viem'
import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/**
 * Sets the caller's acknowledgement of the provider's TEE signer. transferFund already sets it when it funds a
 * sub-account; revoking (false) is allowed only with a zero balance.
 */
export function acknowledgeTEESigner(
  clients: ZgClients,
  params: { provider: Address; acknowledged?: boolean },
): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'acknowledgeTEESigner',
    args: [params.provider, params.acknowledged ?? true],
  })
}
