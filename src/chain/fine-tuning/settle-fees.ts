import type { Hex } from 'viem'
import { fineTuningServingAbi } from '../abi/fine-tuning-serving.ts'
import type { ZgClients } from '../clients.ts'
import { type WriteResult, writeContract } from '../write-contract.ts'
import { fineTuningAddress } from './contract.ts'
import type { VerifierMessage } from './verifier-message.ts'

/**
 * Provider: charges the task's fee for deliverable `id`, with the TEE signer's VerifierMessage signature. An
 * acknowledged deliverable needs a non-empty encryptedSecret (stored for the user) and pays taskFee in full; an
 * unacknowledged one needs "0x" and pays taskFee × penaltyPercentage / 100. The nonce must exceed the account's.
 */
export function settleFineTuningFees(
  clients: ZgClients,
  input: VerifierMessage & { signature: Hex },
): Promise<WriteResult> {
  const { id, encryptedSecret, modelRootHash, nonce, signature, taskFee, user } = input
  return writeContract(clients, {
    address: fineTuningAddress(clients),
    abi: fineTuningServingAbi,
    functionName: 'settleFees',
    args: [{ id, encryptedSecret, modelRootHash, nonce, signature, taskFee, user }],
  })
}
