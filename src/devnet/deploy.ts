import { type Address, getAddress } from 'viem'
import { fineTuningServingAbi, inferenceServingAbi, ledgerManagerAbi } from '../chain/abi/index.ts'
import type { ZgPublicClient, ZgWalletClient } from '../chain/clients.ts'
import { FINE_TUNING_SERVICE_NAME } from '../chain/fine-tuning/contract.ts'
import { writeContract } from '../chain/write-contract.ts'
import { type Artifact, loadOpenZeppelinArtifact, loadZgArtifacts } from './artifacts.ts'

/** Where deployZgContracts put the 0G contracts: the proxies users talk to, and what stands behind them. */
export type DeployedContracts = {
  /** LedgerManager BeaconProxy. */
  ledger: Address
  /** InferenceServing BeaconProxy. */
  inference: Address
  ledgerBeacon: Address
  inferenceBeacon: Address
  ledgerImpl: Address
  inferenceImpl: Address
  /** FineTuningServing BeaconProxy. */
  fineTuning: Address
  fineTuningBeacon: Address
  fineTuningImpl: Address
}

/** The fine-tuning part of DeployedContracts (deployFineTuning adds it to a chain that lacks it). */
export type FineTuningContracts = Pick<DeployedContracts, 'fineTuning' | 'fineTuningBeacon' | 'fineTuningImpl'>

/** What a devnet deployed before fine-tuning existed has: the ledger and the inference contract. */
export type InferenceContracts = Omit<DeployedContracts, keyof FineTuningContracts>

type DeployParams = {
  publicClient: ZgPublicClient
  walletClient: ZgWalletClient
  /** Seconds a retrieved sub-account balance stays locked; the contract accepts 3600..604800. Default 86400. */
  lockTime?: bigint
}

/** The name the SDK and our code resolve the inference service by (ledger.getServiceInfo(inference).fullName). */
export const INFERENCE_SERVICE_NAME = 'inference-v1.0'

/** 24 h, the lock time of the production deployment (0g-protocol.md §1.3). */
export const DEFAULT_LOCK_TIME = 86_400n

/** Share of the task fee a provider may charge for a deliverable the user never acknowledged (production's 30). */
export const FINE_TUNING_PENALTY_PERCENTAGE = 30n

/**
 * Deploys the real LedgerManager, InferenceServing and FineTuningServing bytecode the way production does: each
 * implementation behind an OpenZeppelin UpgradeableBeacon (owned by the wallet) and a BeaconProxy(beacon, ""), each
 * initialized and registered on the ledger (deployInferenceContracts, then deployFineTuning).
 *
 * The transactions are sent in production's order (impl, beacon, proxy, initialize; ledger first), so from a
 * fresh anvil account 0 the three proxies land on the addresses the SDK hard-codes for chain 31337
 * (CONTRACT_ADDRESSES.hardhat, nonces 2, 6 and 12): the official SDK then finds our devnet contracts without being
 * told.
 */
export async function deployZgContracts(params: DeployParams): Promise<DeployedContracts> {
  const inference = await deployInferenceContracts(params)
  const fineTuning = await deployFineTuning({ ...params, ledger: inference.ledger })
  return { ...inference, ...fineTuning }
}

/**
 * The ledger and the inference contract alone: LedgerManager.initialize(owner),
 * InferenceServing.initialize(lockTime, ledger, owner), and the ledger registers the inference contract as
 * "inference" "v1.0", the recommended version.
 */
export async function deployInferenceContracts(params: DeployParams): Promise<InferenceContracts> {
  const { publicClient, walletClient } = params
  const lockTime = params.lockTime ?? DEFAULT_LOCK_TIME
  const owner = walletClient.account.address
  const zg = loadZgArtifacts()
  const beacon = loadOpenZeppelinArtifact('UpgradeableBeacon')
  const proxy = loadOpenZeppelinArtifact('BeaconProxy')
  const clients = { publicClient, walletClient }
  const deploy = (artifact: Artifact, args: readonly unknown[], label: string) =>
    deployContract(publicClient, walletClient, artifact, args, label)

  const ledgerImpl = await deploy(zg.ledger, [], 'LedgerManager implementation')
  const ledgerBeacon = await deploy(beacon, [ledgerImpl, owner], 'LedgerManager UpgradeableBeacon')
  const ledger = await deploy(proxy, [ledgerBeacon, '0x'], 'LedgerManager BeaconProxy')
  await writeContract(clients, { address: ledger, abi: ledgerManagerAbi, functionName: 'initialize', args: [owner] })

  const inferenceImpl = await deploy(zg.inference, [], 'InferenceServing implementation')
  const inferenceBeacon = await deploy(beacon, [inferenceImpl, owner], 'InferenceServing UpgradeableBeacon')
  const inference = await deploy(proxy, [inferenceBeacon, '0x'], 'InferenceServing BeaconProxy')
  await writeContract(clients, {
    address: inference,
    abi: inferenceServingAbi,
    functionName: 'initialize',
    args: [lockTime, ledger, owner],
  })

  await writeContract(clients, {
    address: ledger,
    abi: ledgerManagerAbi,
    functionName: 'registerService',
    args: ['inference', 'v1.0', inference, '0G inference serving (devnet)'],
  })

  const info = await publicClient.readContract({
    address: ledger,
    abi: ledgerManagerAbi,
    functionName: 'getServiceInfo',
    args: [inference],
  })
  if (info.fullName !== INFERENCE_SERVICE_NAME) {
    throw new Error(
      `The ledger registered the inference contract as "${info.fullName}", expected "${INFERENCE_SERVICE_NAME}"`,
    )
  }
  await writeContract(clients, {
    address: ledger,
    abi: ledgerManagerAbi,
    functionName: 'setRecommendedService',
    args: ['inference', 'v1.0'],
  })
  return { ledger, inference, ledgerBeacon, inferenceBeacon, ledgerImpl, inferenceImpl }
}

/**
 * Deploys FineTuningServing behind its own UpgradeableBeacon and BeaconProxy,
 * initialize(lockTime, ledger, owner, 30), and has the ledger (owned by the same wallet) register it as
 * "fine-tuning" "v1.0", the recommended version. Also used alone on a devnet deployed before fine-tuning existed.
 */
export async function deployFineTuning(params: DeployParams & { ledger: Address }): Promise<FineTuningContracts> {
  const { publicClient, walletClient, ledger } = params
  const lockTime = params.lockTime ?? DEFAULT_LOCK_TIME
  const owner = walletClient.account.address
  const clients = { publicClient, walletClient }
  const deploy = (artifact: Artifact, args: readonly unknown[], label: string) =>
    deployContract(publicClient, walletClient, artifact, args, label)

  const fineTuningImpl = await deploy(loadZgArtifacts().fineTuning, [], 'FineTuningServing implementation')
  const fineTuningBeacon = await deploy(
    loadOpenZeppelinArtifact('UpgradeableBeacon'),
    [fineTuningImpl, owner],
    'FineTuningServing UpgradeableBeacon',
  )
  const fineTuning = await deploy(
    loadOpenZeppelinArtifact('BeaconProxy'),
    [fineTuningBeacon, '0x'],
    'FineTuningServing BeaconProxy',
  )
  await writeContract(clients, {
    address: fineTuning,
    abi: fineTuningServingAbi,
    functionName: 'initialize',
    args: [lockTime, ledger, owner, FINE_TUNING_PENALTY_PERCENTAGE],
  })
  await writeContract(clients, {
    address: ledger,
    abi: ledgerManagerAbi,
    functionName: 'registerService',
    args: ['fine-tuning', 'v1.0', fineTuning, '0G fine-tuning serving (devnet)'],
  })
  await writeContract(clients, {
    address: ledger,
    abi: ledgerManagerAbi,
    functionName: 'setRecommendedService',
    args: ['fine-tuning', 'v1.0'],
  })

  const info = await publicClient.readContract({
    address: ledger,
    abi: ledgerManagerAbi,
    functionName: 'getServiceInfo',
    args: [fineTuning],
  })
  if (info.fullName !== FINE_TUNING_SERVICE_NAME) {
    throw new Error(
      `The ledger registered the fine-tuning contract as "${info.fullName}", expected "${FINE_TUNING_SERVICE_NAME}"`,
    )
  }
  return { fineTuning, fineTuningBeacon, fineTuningImpl }
}

async function deployContract(
  publicClient: ZgPublicClient,
  walletClient: ZgWalletClient,
  artifact: Artifact,
  args: readonly unknown[],
  label: string,
): Promise<Address> {
  let hash: `0x${string}`
  try {
    hash = await walletClient.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args })
  } catch (err) {
    throw new Error(`Deploying the ${label} failed: ${(err as Error).message}`, { cause: err })
  }
  const receipt = await publicClient.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success' || !receipt.contractAddress) {
    throw new Error(`Deploying the ${label} failed: transaction ${hash} reverted`)
  }
  return getAddress(receipt.contractAddress)
}
