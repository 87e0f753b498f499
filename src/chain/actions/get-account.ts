import type { Address } from 'viem'
import { inferenceServingAbi } from '../abi/inference-serving.ts'
import type { ZgClients } from '../clients.ts'
import { readOptional } from '../read-optional.ts'

export type Refund = { index: bigint; amount: bigint; createdAt: bigint; processed: boolean }

/** A user's sub-account (escrow) with one provider. */
export type SubAccount = {
  user: Address
  provider: Address
  /** Highest settlement nonce used so far. */
  nonce: bigint
  balance: bigint
  pendingRefund: bigint
  /** Only refunds[0, validRefundsLength) are live. */
  refunds: readonly Refund[]
  additionalInfo: string
  acknowledged: boolean
  validRefundsLength: bigint
  /** Session-token generation; revokeAllTokens bumps it. */
  generation: bigint
  /** Bit i set = persistent token id i revoked. */
  revokedBitmap: bigint
}

/** The sub-account of `user` with `provider`, or undefined when there is none. */
export function getAccount(
  clients: ZgClients,
  params: { user: Address; provider: Address },
): Promise<SubAccount | undefined> {
  const read = clients.publicClient.readContract({
    address: clients.network.contracts.inference,
    abi: inferenceServingAbi,
    functionName: 'getAccount',
    args: [params.user, params.provider],
  })
  return readOptional(read, 'AccountNotExists')
}
