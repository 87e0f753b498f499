import type { Address, Hex, TypedDataDefinition } from 'viem'

/**
 * The EIP-712 schema FineTuningServing checks in settleFees: domain "0G Fine-Tuning Serving" version 1 on the
 * fine-tuning proxy, type VerifierMessage (0g-serving-contract FineTuningVerifier.sol; 0g-protocol.md §1.4).
 */
export const VERIFIER_MESSAGE_TYPES = {
  VerifierMessage: [
    { name: 'id', type: 'string' },
    { name: 'encryptedSecret', type: 'bytes' },
    { name: 'modelRootHash', type: 'bytes' },
    { name: 'nonce', type: 'uint256' },
    { name: 'taskFee', type: 'uint256' },
    { name: 'user', type: 'address' },
  ],
} as const

export function fineTuningDomain(chainId: number, contract: Address) {
  return { name: '0G Fine-Tuning Serving', version: '1', chainId, verifyingContract: contract } as const
}

export type VerifierMessage = {
  id: string
  /** "0x" for a deliverable the user never acknowledged (the penalty settlement). */
  encryptedSecret: Hex
  modelRootHash: Hex
  nonce: bigint
  taskFee: bigint
  user: Address
}

/** Signs a settlement as the service's TEE signer (a viem account, wallet client or our TeeSigner). */
export function signVerifierMessage(
  signer: {
    signTypedData(typedData: TypedDataDefinition<typeof VERIFIER_MESSAGE_TYPES, 'VerifierMessage'>): Promise<Hex>
  },
  params: VerifierMessage & { chainId: number; contract: Address },
): Promise<Hex> {
  const { chainId, contract, id, encryptedSecret, modelRootHash, nonce, taskFee, user } = params
  return signer.signTypedData({
    domain: fineTuningDomain(chainId, contract),
    types: VERIFIER_MESSAGE_TYPES,
    primaryType: 'VerifierMessage',
    message: { id, encryptedSecret, modelRootHash, nonce, taskFee, user },
  })
}
