import type { Address, Hex } from 'viem'

/**
 * A task's progress, in 0G's words (the broker's task states, which the SDK prints as they are), plus Cancelled:
 * - Init: queued; SettingUp / SetUp: its dataset and work dir are being prepared / are ready;
 * - Training / Trained: the trainer runs / has written the adapter;
 * - Delivering: the adapter is being packed, encrypted and registered on chain (addDeliverable), which waits while
 *   the user's previous deliverable is unacknowledged;
 * - Delivered: on chain, the encrypted file downloadable; waiting for the user's acknowledgement;
 * - UserAcknowledged: acknowledged; the fee is being settled with the key ECIES-encrypted to the user;
 * - Finished: settled (the log says whether with the key and the full fee, or without them after the
 *   acknowledgement window: the 30% penalty);
 * - Failed: the trainer failed (or the dataset could not be read): nothing is charged;
 * - Cancelled: the user cancelled it before delivery: nothing is charged.
 */
export const TASK_PROGRESS = [
  'Init',
  'SettingUp',
  'SetUp',
  'Training',
  'Trained',
  'Delivering',
  'Delivered',
  'UserAcknowledged',
  'Finished',
  'Failed',
  'Cancelled',
] as const
export type TaskProgress = (typeof TASK_PROGRESS)[number]

/** States a task leaves no more: its fee is no longer held against the user's sub-account. */
export const FINAL_PROGRESS: ReadonlySet<TaskProgress> = new Set(['Finished', 'Failed', 'Cancelled'])

/** States before the deliverable is on its way to the chain: the user may still cancel. */
export const CANCELLABLE_PROGRESS: ReadonlySet<TaskProgress> = new Set([
  'Init',
  'SettingUp',
  'SetUp',
  'Training',
  'Trained',
])

/** How a delivered task was settled: with the user's acknowledgement (key, full fee) or without (penalty). */
export type Settlement = 'acknowledged' | 'penalty'

/** One fine-tuning task as the node keeps it. */
export type FineTuningTask = {
  /** A uuid (the deliverable id on chain). */
  id: string
  user: Address
  createdAt: number
  updatedAt: number
  preTrainedModelHash: Hex
  /** The base model's name among the node's models. */
  baseModel: string
  datasetHash: Hex
  /** The JSON text the user sent, as sent. */
  trainingParams: string
  /** Neuron: dataset tokens × pricePerToken × epochs. */
  fee: bigint
  tokens: number
  epochs: number
  nonce: bigint
  signature: Hex
  /** The user's uncompressed secp256k1 public key, recovered from the task signature: the secret is encrypted to it. */
  userPublicKey: Hex
  progress: TaskProgress
  /** keccak256 of the encrypted artifact, once it is written. */
  modelRootHash?: Hex
  /**
   * The artifact's AES-256 key (hex), kept until settlement sends it ECIES-encrypted to the user. It never leaves the
   * node otherwise; in a TEE deployment the data dir is the CVM's encrypted disk.
   */
  artifactKey?: Hex
  /** When the deliverable landed on chain (ms): the acknowledgement window starts here. */
  deliveredAt?: number
  /** Its place among the user's deliverables on chain (0G's deliverIndex), once delivered. */
  deliverIndex?: number
  settlement?: Settlement
  settleTxHash?: Hex
  /** Why it failed, for Failed tasks. */
  error?: string
}

/**
 * The Task JSON 0G's broker serves (SDK `fine-tuning/provider/provider.d.ts` Task): what `getTask`, `listTask` and
 * the CLI print.
 */
export function taskJson(task: FineTuningTask) {
  return {
    id: task.id,
    createdAt: new Date(task.createdAt).toISOString(),
    updatedAt: new Date(task.updatedAt).toISOString(),
    userAddress: task.user,
    preTrainedModelHash: task.preTrainedModelHash,
    datasetHash: task.datasetHash,
    trainingParams: task.trainingParams,
    fee: task.fee.toString(),
    nonce: task.nonce.toString(),
    signature: task.signature,
    progress: task.progress,
    deliverIndex: task.deliverIndex ?? 0,
  }
}
