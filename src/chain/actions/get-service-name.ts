import { ledgerManagerAbi } from '../abi/ledger-manager.ts'
import type { ZgClients } from '../clients.ts'

const cache = new WeakMap<ZgClients, Promise<string>>()

/**
 * The inference service's name on the ledger ("inference-v1.0" today), which transferFund and retrieveFund take.
 * The SDK resolves it the same way: ledger.getServiceInfo(inference).fullName.
 */
export function getServiceName(clients: ZgClients): Promise<string> {
  let name = cache.get(clients)
  if (!name) {
    name = clients.publicClient
      .readContract({
        address: clients.network.contracts.ledger,
        abi: ledgerManagerAbi,
        functionName: 'getServiceInfo',
        args: [clients.network.contracts.inference],
      })
      .then((info) => info.fullName)
    name.catch(() => cache.delete(clients))
    cache.set(clients, name)
  }
  return name
}
