import type { Address, Hex } from 'viem'
import { fineTuningServingAbi } from '../abi/fine-tuning-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'
import { fineTuningAddress } from './contract.ts'

/**
 * Provider: records the trained model `id` (the task id, 1..256 bytes) for `user`. Reverts
 * PreviousDeliverableNotAcknowledged while the user has not acknowledged the previous one, even when that one was
 * settled at the penalty (it can then never be acknowledged: the sub-account takes no new deliverable until the
 * user empties the ledger, which deletes the sub-account; test/fine-tuning-contract.test.ts).
 */
export function addDeliverable(
  clients: ZgClients,
  params: { user: Address; id: string; modelRootHash: Hex },
): Promise<WriteResult> {
  return writeContract(clients, {
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'addDeliverable',
    args: [params.user, params.id, params.modelRootHash],
  })
}

/** User: confirms the model `id` from `provider` was downloaded and matches its modelRootHash. */
export function acknowledgeDeliverable(
  clients: ZgClients,
  params: { provider: Address; id: string },
): Promise<WriteResult> {
  return writeContract(clients, {
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'acknowledgeDeliverable',
    args: [params.provider, params.id],
  })
}
