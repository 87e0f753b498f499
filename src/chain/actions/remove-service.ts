import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'

/** Removes the caller's service; the stake is returned. */
export function removeService(clients: ZgClients): Promise<WriteResult> {
  return writeContract(clients, {
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'removeService',
    args: [],
  })
}
