import type { Address, Hex } from 'viem'
import { fineTuningServingAbi } from '../abi/fine-tuning-serving.ts'
import type { ZgClients } from '../clients.ts'
import { readOptional } from '../read-optional.ts'
import { fineTuningAddress } from './contract.ts'

/** One trained model the provider delivered to the user: its id is the task id. */
export type Deliverable = {
  id: string
  /** keccak256 of the encrypted artifact (0G's download path checks exactly that). */
  modelRootHash: Hex
  /** The AES key, ECIES-encrypted to the user; "0x" until an acknowledged deliverable is settled. */
  encryptedSecret: Hex
  /** The user confirmed the download (acknowledgeDeliverable). */
  acknowledged: boolean
  /** Block time of addDeliverable, unix seconds. */
  timestamp: bigint
  settled: boolean
}

/** A user's fine-tuning sub-account (escrow) with one provider. */
export type FineTuningAccount = {
  user: Address
  provider: Address
  /** Highest settlement nonce used so far. */
  nonce: bigint
  balance: bigint
  pendingRefund: bigint
  /** The user accepts the provider's TEE signer (set by the ledger when funds are transferred). */
  acknowledged: boolean
  /** Oldest first; the contract keeps at most 20 (a circular buffer). */
  deliverables: Deliverable[]
}

function toDeliverable(raw: Deliverable): Deliverable {
  const { id, modelRootHash, encryptedSecret, acknowledged, timestamp, settled } = raw
  return { id, modelRootHash, encryptedSecret, acknowledged, timestamp, settled }
}

/** The fine-tuning sub-account of `user` with `provider`, or undefined when there is none. */
export async function getFineTuningAccount(
  clients: ZgClients,
  user: Address,
  provider: Address,
): Promise<FineTuningAccount | undefined> {
  const read = clients.publicClient.readContract({
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'getAccount',
    args: [user, provider],
  })
  const raw = await readOptional(read, 'AccountNotExists')
  if (!raw) return undefined
  return {
    user: raw.user,
    provider: raw.provider,
    nonce: raw.nonce,
    balance: raw.balance,
    pendingRefund: raw.pendingRefund,
    acknowledged: raw.acknowledged,
    deliverables: raw.deliverables.map(toDeliverable),
  }
}

/** The deliverable `id` in the sub-account, or undefined when the account or the deliverable does not exist. */
export async function getDeliverable(
  clients: ZgClients,
  user: Address,
  provider: Address,
  id: string,
): Promise<Deliverable | undefined> {
  const read = clients.publicClient.readContract({
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'getDeliverable',
    args: [user, provider, id],
  })
  // readOptional rethrows other reverts already decoded, so the outer one sees a ZgContractError.
  const raw = await readOptional(readOptional(read, 'DeliverableNotExists'), 'AccountNotExists')
  return raw && toDeliverable(raw)
}
