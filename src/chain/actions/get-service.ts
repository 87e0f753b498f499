import type { Address } from 'viem'
import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { readOptional } from '../read-optional.ts'

/** An inference service as registered on-chain by its provider. Prices are neuron per token (or per unit). */
export type Service = {
  provider: Address
  serviceType: string
  url: string
  inputPrice: bigint
  outputPrice: bigint
  updatedAt: bigint
  model: string
  verifiability: string
  additionalInfo: string
  teeSignerAddress: Address
  teeSignerAcknowledged: boolean
}

/** The provider's service, or undefined when it has none. */
export function getService(clients: ZgClients, params: { provider: Address }): Promise<Service | undefined> {
  const read = clients.publicClient.readContract({
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'getService',
    args: [params.provider],
  })
  return readOptional(read, 'ServiceNotExist')
}
