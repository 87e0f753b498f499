import type { Address } from 'viem'
import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

export type ServiceParams = {
  serviceType: string
  url: string
  model: string
  verifiability: string
  inputPrice: bigint
  outputPrice: bigint
  additionalInfo: string
  teeSignerAddress: Address
}

/**
 * Registers (with `stake`, ≥ 100 0G, on first registration) or updates (no stake) the caller's service. Changing the
 * type, model, verifiability, signer or additionalInfo resets the owner's signer acknowledgement.
 */
export function addOrUpdateService(
  clients: ZgClients,
  params: { service: ServiceParams; stake?: bigint },
): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'addOrUpdateService',
    args: [params.service],
    value: params.stake ?? 0n,
  })
}
