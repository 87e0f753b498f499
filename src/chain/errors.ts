import { BaseError, ContractFunctionRevertedError, decodeErrorResult, formatEther, type Hex } from 'viem'
import { fineTuningServingAbi } from './abi/fine-tuning-serving.ts'
import { inferenceServingAbi } from './abi/inference-serving.ts'
import { ledgerManagerAbi } from './abi/ledger-manager.ts'

// Same-named errors with other arguments (LockTimeOutOfRange, LimitTooLarge) differ in selector, so each decodes.
const abis = [...ledgerManagerAbi, ...inferenceServingAbi, ...fineTuningServingAbi]

const fmt = (v: unknown) => (typeof v === 'bigint' ? `${formatEther(v)} 0G` : String(v))

/** What to do about each 0G contract error, in words a user can act on. */
const hints: Record<string, (args: readonly unknown[], functionName?: string) => string> = {
  LedgerNotExists: () =>
    'No ledger (main account) exists for this wallet. Create one first: zg-gateway account create --amount 3',
  LedgerExists: () => 'This wallet already has a ledger. Use zg-gateway account deposit to add funds.',
  MinimumDepositRequired: ([provided, required], functionName) =>
    functionName === 'refund'
      ? `The refund would leave ${fmt(provided)} in the ledger, below the minimum of ${fmt(required)}. Refund everything, or leave at least ${fmt(required)}.`
      : `The amount ${fmt(provided)} is below the minimum of ${fmt(required)}. Send at least ${fmt(required)}.`,
  InsufficientAvailableBalance: ([available, required]) =>
    `The ledger has ${fmt(available)} available but ${fmt(required)} is needed. Deposit more (zg-gateway account deposit) or retrieve funds from sub-accounts.`,
  InsufficientBalance: ([user], functionName) =>
    functionName === 'refund'
      ? `The ledger of ${user} has less available than the amount. Refund at most its available balance (zg-gateway account show), or first retrieve funds from sub-accounts (zg-gateway account retrieve).`
      : `The ledger of ${user} has too little locked in sub-accounts to pay this charge. Transfer more to the sub-account.`,
  MustWithdrawAllFundsFirst: ([remaining]) =>
    `The ledger still holds ${fmt(remaining)}. Retrieve funds from sub-accounts and refund them to the wallet before deleting.`,
  TooManyProviders: ([requested, max]) =>
    `Too many providers in one call (${requested}, at most ${max}). Split the call.`,
  TooManyProvidersForService: ([current, max]) =>
    `This ledger already funds ${current} providers of this service (at most ${max}). Retrieve and close one first.`,
  ServiceNotFound: () =>
    'The service name is not registered on the ledger. Check the network and the service name (inference-v1.0).',
  ServiceNotExist: ([provider]) => `Provider ${provider} has no registered service on this network.`,
  AccountNotExists: ([, provider]) =>
    `No sub-account with provider ${provider}. Fund one first: zg-gateway account transfer --provider ${provider} --amount 1`,
  AccountExists: () => 'The sub-account already exists.',
  TooManyRefunds: () =>
    'This sub-account already has 5 pending refunds. Wait for the lock time to pass and retrieve again to release them.',
  LedgerLocked: () => 'Another ledger operation for this wallet is in progress. Try again.',
  InsufficientStake: ([provided, required]) =>
    `A provider must stake ${fmt(required)} with its first registration; ${fmt(provided)} was sent.`,
  CannotAddStakeWhenUpdating: () => 'The service is already registered: update it without sending stake.',
  CannotRevokeWithNonZeroBalance: () => 'The acknowledgement can only be revoked when the sub-account balance is 0.',
  LockTimeOutOfRange: ([lockTime, min, max]) =>
    min === undefined
      ? `Lock time ${lockTime}s is out of range [3600s, 604800s].`
      : `Lock time ${lockTime}s is out of range [${min}s, ${max}s].`,
  DirectDepositsDisabled: () => 'The contract does not accept plain transfers. Use zg-gateway account deposit.',
  AdditionalInfoTooLong: () => 'additionalInfo is too long (at most 4096 bytes).',
  ProviderCannotBeUser: () => 'A provider cannot open a sub-account with itself.',
  ZeroAmountNotAllowed: () => 'The amount must be greater than 0.',
  ZeroAddressNotAllowed: () => 'The zero address is not allowed here.',
  PreviousDeliverableNotAcknowledged: ([id]) =>
    `The user has not acknowledged the previous fine-tuned model (task ${id}): no new model can be delivered to this sub-account until they do. A model settled at the penalty can no longer be acknowledged; only emptying the user's ledger (which deletes its sub-accounts) clears it.`,
  DeliverableAlreadyExists: ([id]) => `A deliverable with id ${id} already exists in this sub-account.`,
  DeliverableNotExists: ([id]) => `No deliverable with id ${id} in this sub-account.`,
  DeliverableAlreadySettled: ([id]) => `The fees of deliverable ${id} are already settled.`,
  DeliverableIdInvalidLength: ([length]) => `A deliverable id must be 1..256 bytes long; this one has ${length}.`,
  CannotAcknowledgeSettledDeliverable: ([id]) =>
    `Deliverable ${id} was already settled (the provider charged the penalty), so it can no longer be acknowledged.`,
  CannotEvictUnsettledDeliverable: ([id]) =>
    `The sub-account already holds 20 deliverables and the oldest (${id}) is unsettled: it must be settled first.`,
  SecretShouldNotBeEmpty: () => 'The user acknowledged this deliverable: settle it with the encrypted key.',
  SecretShouldBeEmpty: () =>
    'The user has not acknowledged this deliverable: settle it with an empty secret (0x) for the penalty fee.',
  InvalidVerifierInput: ([reason]) => `The settlement was refused: ${reason}.`,
  PenaltyPercentageTooHigh: ([percentage]) => `The penalty percentage ${percentage} is above 100.`,
}

/**
 * A revert of a 0G contract, decoded: the custom error's name and arguments, the raw revert data, and a message
 * that says what to do.
 */
export class ZgContractError extends Error {
  override name = 'ZgContractError'
  readonly errorName: string
  readonly args: readonly unknown[]
  readonly revertData: Hex | undefined
  readonly functionName: string | undefined

  constructor(params: {
    errorName: string
    args: readonly unknown[]
    revertData?: Hex
    functionName?: string
    cause?: unknown
  }) {
    const hint = hints[params.errorName]?.(params.args, params.functionName)
    const call = params.functionName ? `${params.functionName} reverted` : 'reverted'
    const argText = params.args.length ? `(${params.args.map(fmt).join(', ')})` : '()'
    super(`${call} with ${params.errorName}${argText}${hint ? `: ${hint}` : ''}`, { cause: params.cause })
    this.errorName = params.errorName
    this.args = params.args
    this.revertData = params.revertData
    this.functionName = params.functionName
  }
}

/** Decodes raw revert data with the 0G ABIs; undefined when the selector is unknown. */
export function decodeZgRevert(data: Hex): { errorName: string; args: readonly unknown[] } | undefined {
  try {
    const decoded = decodeErrorResult({ abi: abis, data })
    return { errorName: decoded.errorName, args: decoded.args ?? [] }
  } catch {
    return undefined
  }
}

/**
 * Turns a viem error from a contract call into a ZgContractError when it is a decodable revert; returns the error
 * unchanged otherwise.
 */
export function toZgError(err: unknown): unknown {
  if (!(err instanceof BaseError)) return err
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null
  if (!reverted) return err
  const functionName = (err as { functionName?: string }).functionName
  const raw = reverted.raw
  const decoded = reverted.data?.errorName
    ? { errorName: reverted.data.errorName, args: reverted.data.args ?? [] }
    : raw
      ? decodeZgRevert(raw)
      : undefined
  if (!decoded) return err
  return new ZgContractError({ ...decoded, revertData: raw, functionName, cause: err })
}
