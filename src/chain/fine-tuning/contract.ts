import type { Address } from 'viem'
import type { ZgClients } from '../clients.ts'

/** The ledger's name for the fine-tuning service: registerService("fine-tuning", "v1.0", ft) → fullName. */
export const FINE_TUNING_SERVICE_NAME = 'fine-tuning-v1.0'

/** The FineTuningServing proxy of the client's network; a network without one cannot do fine-tuning. */
export function fineTuningAddress(clients: Pick<ZgClients, 'network'>): Address {
  const address = clients.network.contracts.fineTuning
  if (!address) {
    throw new Error(
      `Network "${clients.network.name}" has no FineTuningServing contract configured (contracts.fineTuning): fine-tuning is unavailable there.`,
    )
  }
  return address
}
