import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'

/** How long (seconds) a refund stays locked before retrieveFund releases it. */
export function getLockTime(clients: ZgClients): Promise<bigint> {
  return clients.publicClient.readContract({
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'lockTime',
  })
}
