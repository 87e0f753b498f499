import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import type { Service } from './get-service.ts'

/** The contract's page limit for getAllServices. */
const PAGE = 50n

/** Every registered inference service, paged through getAllServices(offset, 50) until `total`. */
export async function getAllServices(clients: ZgClients): Promise<Service[]> {
  const all: Service[] = []
  for (let offset = 0n; ; offset += PAGE) {
    const [services, total] = await clients.publicClient.readContract({
      address: clients.network.contracts.inference,
      abi: inferenceServingAbi,
      functionName: 'getAllServices',
      args: [offset, PAGE],
    })
    all.push(...services)
    if (services.length === 0 || offset + PAGE >= total) return all
  }
}
