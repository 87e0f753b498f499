import type { Address } from 'viem'

/**
 * The EIP-712 schema InferenceServing checks in settleFeesWithTEE: domain "0G Inference Serving" version 1 on the
 * inference proxy, type TEESettlement (0g-serving-contract InferenceServing.sol; broker const.go).
 */
export const TEE_SETTLEMENT_TYPES = {
  TEESettlement: [
    { name: 'requestsHash', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'provider', type: 'address' },
    { name: 'user', type: 'address' },
    { name: 'totalFee', type: 'uint256' },
  ],
} as const

export function teeSettlementDomain(chainId: number, inference: Address) {
  return { name: '0G Inference Serving', version: '1', chainId, verifyingContract: inference } as const
}
