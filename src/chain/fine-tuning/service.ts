import type { Address } from 'viem'
import { fineTuningServingAbi } from '../abi/fine-tuning-serving.ts'
import type { ZgClients } from '../clients.ts'
import { readOptional } from '../read-optional.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'
import { fineTuningAddress } from './contract.ts'

/** The hardware a fine-tuning provider offers (memory and storage in the provider's own unit, GB by 0G's CLI). */
export type FineTuningQuota = {
  cpuCount: bigint
  nodeMemory: bigint
  gpuCount: bigint
  nodeStorage: bigint
  gpuType: string
}

/** A fine-tuning service as registered on-chain by its provider. pricePerToken is neuron per dataset token. */
export type FineTuningService = {
  provider: Address
  url: string
  quota: FineTuningQuota
  pricePerToken: bigint
  /** The provider says it is busy (0G's CLI shows it as "occupied"). */
  occupied: boolean
  /** Base model names the provider trains from. */
  models: string[]
  teeSignerAddress: Address
  teeSignerAcknowledged: boolean
}

type RawService = {
  provider: Address
  url: string
  quota: FineTuningQuota
  pricePerToken: bigint
  occupied: boolean
  models: readonly string[]
  teeSignerAddress: Address
  teeSignerAcknowledged: boolean
}

function toService(raw: RawService): FineTuningService {
  return { ...raw, quota: { ...raw.quota }, models: [...raw.models] }
}

/** The provider's fine-tuning service, or undefined when it has none. */
export async function getFineTuningService(
  clients: ZgClients,
  provider: Address,
): Promise<FineTuningService | undefined> {
  const read = clients.publicClient.readContract({
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'getService',
    args: [provider],
  })
  const raw = await readOptional(read, 'ServiceNotExist')
  return raw && toService(raw)
}

/** Every registered fine-tuning service (the contract's getAllServices is not paged). */
export async function listFineTuningServices(clients: ZgClients): Promise<FineTuningService[]> {
  const services = await clients.publicClient.readContract({
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'getAllServices',
  })
  return services.map(toService)
}

/**
 * Registers (with `stake`, ≥ 100 0G, on first registration) or updates (no stake) the caller's fine-tuning service.
 * The owner's acknowledgement of the TEE signer is needed before settleFees accepts its signatures.
 */
export function addOrUpdateFineTuningService(
  clients: ZgClients,
  params: {
    url: string
    quota: FineTuningQuota
    pricePerToken: bigint
    occupied: boolean
    models: readonly string[]
    teeSignerAddress: Address
    stake?: bigint
  },
): Promise<WriteResult> {
  return writeContract(clients, {
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'addOrUpdateService',
    args: [params.url, params.quota, params.pricePerToken, params.occupied, params.models, params.teeSignerAddress],
    value: params.stake ?? 0n,
  })
}

/** Contract owner only: acknowledges the TEE signer registered on the provider's fine-tuning service. */
export function acknowledgeFineTuningSignerByOwner(clients: ZgClients, provider: Address): Promise<WriteResult> {
  return writeContract(clients, {
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'acknowledgeTEESignerByOwner',
    args: [provider],
  })
}
