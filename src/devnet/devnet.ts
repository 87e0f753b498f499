import { randomUUID } from 'node:crypto'
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Address, getAddress, isAddress, parseAbi, slice, zeroAddress } from 'viem'
import { ledgerManagerAbi } from '../chain/abi/index.ts'
import { createZgClients, type ZgPublicClient, type ZgWalletClients } from '../chain/clients.ts'
import { FINE_TUNING_SERVICE_NAME } from '../chain/fine-tuning/contract.ts'
import { customNetwork, type ZgNetwork } from '../chain/networks.ts'
import { writeContract } from '../chain/write-contract.ts'
import { type Anvil, anvilAccount, startAnvil } from './anvil.ts'
import { loadOpenZeppelinArtifact } from './artifacts.ts'
import {
  DEFAULT_LOCK_TIME,
  type DeployedContracts,
  deployFineTuning,
  deployZgContracts,
  type FineTuningContracts,
  INFERENCE_SERVICE_NAME,
  type InferenceContracts,
} from './deploy.ts'

/** <data dir>/devnet.json: what the devnet deployed and where it runs. */
export type DevnetInfo = {
  chainId: number
  rpcUrl: string
  contracts: DeployedContracts
  /** Owner of the contracts and their beacons: anvil account 0. */
  owner: Address
  /** InferenceServing and FineTuningServing lock time in seconds, as a decimal string. */
  lockTime: string
  /** ISO time of the deployment. */
  deployedAt: string
  /** The dev wallet (written by the dev stack). */
  wallet?: Address
  /** The provider nodes (written by the dev stack). */
  providers?: Array<{ address: Address; url: string; name: string }>
}

/** devnet.json as read: one written before fine-tuning existed lacks the fine-tuning addresses. */
export type StoredDevnetInfo = Omit<DevnetInfo, 'contracts'> & {
  contracts: InferenceContracts & Partial<FineTuningContracts>
}

export type Devnet = {
  anvil: Anvil
  network: ZgNetwork
  info: DevnetInfo
  /** True when the contracts of an earlier run were found on the restored chain and nothing was deployed. */
  reused: boolean
  stop(): Promise<void>
}

export type StartDevnetOptions = {
  dataDir: string
  /** anvil port on 127.0.0.1; default 8545, 0 for a random free one. */
  port?: number
  /**
   * Lock time in seconds of InferenceServing and FineTuningServing (default 86400). On reuse, a different value is
   * applied on-chain.
   */
  lockTime?: bigint
  log?: (line: string) => void
}

export const DEVNET_CHAIN_ID = 31337
export const DEVNET_INFO_FILE = 'devnet.json'
export const CHAIN_STATE_FILE = 'chain-state.json'

/**
 * anvil dumps --state only on a clean exit; this also dumps every few seconds so a crash (SIGKILL, power loss)
 * loses at most that much. The state of a devnet is small, so the periodic write is cheap.
 */
const STATE_INTERVAL_SECONDS = 2

/** EIP-1967 beacon slot of a BeaconProxy: bytes32(uint256(keccak256('eip1967.proxy.beacon')) - 1). */
const BEACON_SLOT = '0xa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50'

/** What both serving contracts have for their refund lock time. */
const lockTimeAbi = parseAbi([
  'function lockTime() view returns (uint256)',
  'function updateLockTime(uint256 _locktime)',
])

/**
 * Starts anvil with its state in <dataDir>/chain-state.json, and deploys the 0G contracts unless devnet.json names
 * contracts that the restored chain still has.
 */
export async function startDevnet(opts: StartDevnetOptions): Promise<Devnet> {
  const started = performance.now()
  const log = opts.log ?? (() => {})
  const { dataDir } = opts
  const port = opts.port ?? 8545
  await mkdir(dataDir, { recursive: true })
  const stateFile = join(dataDir, CHAIN_STATE_FILE)
  await protectStateFile(stateFile, log)

  let anvil: Anvil
  try {
    anvil = await startAnvil({ port, chainId: DEVNET_CHAIN_ID, stateFile, stateInterval: STATE_INTERVAL_SECONDS })
  } catch (err) {
    if (/already in use/.test((err as Error).message)) {
      throw new Error(
        `Cannot start the devnet: port ${port} on 127.0.0.1 is already in use (another devnet or anvil?). Stop it or choose another port.`,
        { cause: err },
      )
    }
    throw new Error(`Cannot start the devnet chain (state ${stateFile}): ${(err as Error).message}`, { cause: err })
  }

  try {
    const owner = anvilAccount(0)
    const previous = await readPreviousInfo(dataDir, log)
    // The clients only need the chain id and RPC URL; contract addresses come from devnet.json or the deployment.
    const bootstrap = devnetNetwork(anvil, { ledger: zeroAddress, inference: zeroAddress })
    const clients = createZgClients({ network: bootstrap, account: owner })

    let info: DevnetInfo
    let reused = false
    if (previous && previous.chainId === anvil.chainId && (await contractsLive(clients.publicClient, previous))) {
      reused = true
      const lockTime = await syncLockTime(clients, previous.contracts.inference, opts.lockTime, log)
      const fineTuning = await ensureFineTuning(clients, previous.contracts, lockTime, log)
      await syncLockTime(clients, fineTuning.fineTuning, lockTime, log)
      info = {
        ...previous,
        contracts: { ...previous.contracts, ...fineTuning },
        rpcUrl: anvil.rpcUrl,
        lockTime: String(lockTime),
      }
      if (
        info.rpcUrl !== previous.rpcUrl ||
        info.lockTime !== previous.lockTime ||
        info.contracts.fineTuning !== previous.contracts.fineTuning
      ) {
        await writeDevnetInfo(dataDir, info)
      }
    } else {
      if (previous) log(`devnet: the chain no longer has the contracts named in ${DEVNET_INFO_FILE}; deploying anew`)
      const lockTime = opts.lockTime ?? DEFAULT_LOCK_TIME
      const contracts = await deployZgContracts({ ...clients, lockTime })
      info = {
        chainId: anvil.chainId,
        rpcUrl: anvil.rpcUrl,
        contracts,
        owner: owner.address,
        lockTime: String(lockTime),
        deployedAt: new Date().toISOString(),
      }
      // Everything in a stale devnet.json (providers, wallet) described the old chain: start the file over.
      await rm(join(dataDir, DEVNET_INFO_FILE), { force: true })
      await writeDevnetInfo(dataDir, info)
    }

    const ms = Math.round(performance.now() - started)
    log(
      `devnet: chain ${anvil.chainId} on ${anvil.rpcUrl}, ${reused ? 'reused the contracts' : 'deployed the 0G contracts'} ` +
        `(ledger ${info.contracts.ledger}, inference ${info.contracts.inference}, fine-tuning ${info.contracts.fineTuning}) in ${ms} ms`,
    )
    return {
      anvil,
      network: devnetNetwork(anvil, info.contracts),
      info,
      reused,
      stop: () => anvil.stop(),
    }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

function devnetNetwork(
  anvil: Anvil,
  contracts: { ledger: Address; inference: Address; fineTuning?: Address },
): ZgNetwork {
  return customNetwork({
    name: 'devnet',
    chainId: anvil.chainId,
    rpcUrl: anvil.rpcUrl,
    contracts: { ledger: contracts.ledger, inference: contracts.inference, fineTuning: contracts.fineTuning },
  })
}

/** The contracts named in devnet.json exist on this chain and the ledger knows the inference service. */
async function contractsLive(publicClient: ZgPublicClient, info: StoredDevnetInfo): Promise<boolean> {
  const code = await publicClient.getCode({ address: info.contracts.inference })
  if (!code || code === '0x') return false
  try {
    const service = await publicClient.readContract({
      address: info.contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'getServiceInfo',
      args: [info.contracts.inference],
    })
    return service.fullName === INFERENCE_SERVICE_NAME
  } catch {
    return false
  }
}

/**
 * The fine-tuning contracts of a reused chain: those devnet.json names if the ledger knows them; else the
 * "fine-tuning-v1.0" the ledger already has (devnet.json lost them); else, on a chain deployed before fine-tuning
 * existed, newly deployed ones.
 */
async function ensureFineTuning(
  clients: ZgWalletClients,
  contracts: StoredDevnetInfo['contracts'],
  lockTime: bigint,
  log: (line: string) => void,
): Promise<FineTuningContracts> {
  const { publicClient } = clients
  const { fineTuning, fineTuningBeacon, fineTuningImpl } = contracts
  if (fineTuning && fineTuningBeacon && fineTuningImpl) {
    const registered = await serviceName(publicClient, contracts.ledger, fineTuning)
    if (registered === FINE_TUNING_SERVICE_NAME) return { fineTuning, fineTuningBeacon, fineTuningImpl }
  }
  const known = await publicClient
    .readContract({
      address: contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'getServiceAddressByName',
      args: [FINE_TUNING_SERVICE_NAME],
    })
    .catch(() => zeroAddress)
  if (known !== zeroAddress) {
    const slot = await publicClient.getStorageAt({ address: known, slot: BEACON_SLOT })
    const beacon = getAddress(slice(slot ?? `0x${'0'.repeat(64)}`, 12))
    const impl = await publicClient.readContract({
      address: beacon,
      abi: loadOpenZeppelinArtifact('UpgradeableBeacon').abi,
      functionName: 'implementation',
    })
    log(`devnet: ${DEVNET_INFO_FILE} did not name the fine-tuning contract; using ${known}, registered on the ledger`)
    return { fineTuning: getAddress(known), fineTuningBeacon: beacon, fineTuningImpl: getAddress(impl as Address) }
  }
  const deployed = await deployFineTuning({ ...clients, ledger: contracts.ledger, lockTime })
  log(`devnet: the chain had no fine-tuning contract; deployed FineTuningServing at ${deployed.fineTuning}`)
  return deployed
}

async function serviceName(
  publicClient: ZgPublicClient,
  ledger: Address,
  service: Address,
): Promise<string | undefined> {
  try {
    const info = await publicClient.readContract({
      address: ledger,
      abi: ledgerManagerAbi,
      functionName: 'getServiceInfo',
      args: [service],
    })
    return info.fullName
  } catch {
    return undefined
  }
}

/** The contract's on-chain lock time, first changed to the requested one if that differs. */
async function syncLockTime(
  clients: ZgWalletClients,
  contract: Address,
  wanted: bigint | undefined,
  log: (line: string) => void,
): Promise<bigint> {
  const current = await clients.publicClient.readContract({
    address: contract,
    abi: lockTimeAbi,
    functionName: 'lockTime',
  })
  if (wanted === undefined || wanted === current) return current
  await writeContract(clients, { address: contract, abi: lockTimeAbi, functionName: 'updateLockTime', args: [wanted] })
  log(`devnet: lock time of ${contract} changed from ${current} s to ${wanted} s`)
  return wanted
}

async function readPreviousInfo(dataDir: string, log: (line: string) => void): Promise<StoredDevnetInfo | undefined> {
  try {
    return await readDevnetInfo(dataDir)
  } catch (err) {
    log(`devnet: ignoring ${DEVNET_INFO_FILE}: ${(err as Error).message}`)
    return undefined
  }
}

/**
 * anvil writes its state file in place (truncate, then write), so a crash in the middle of a dump leaves a file it
 * refuses to load. Keep the last loadable state as <file>.bak and fall back to it when the file is damaged.
 */
async function protectStateFile(stateFile: string, log: (line: string) => void): Promise<void> {
  const backup = `${stateFile}.bak`
  const text = await readOptional(stateFile)
  if (text === undefined) return
  if (isJson(text)) {
    await copyFile(stateFile, backup)
    return
  }
  const saved = await readOptional(backup)
  if (saved !== undefined && isJson(saved)) {
    await rename(stateFile, `${stateFile}.damaged`)
    await copyFile(backup, stateFile)
    log(
      `devnet: ${stateFile} is damaged (a crash while it was being written?); restored the state saved at the previous start, kept the damaged file as ${stateFile}.damaged`,
    )
    return
  }
  throw new Error(
    `The devnet chain state ${stateFile} is damaged and there is no usable backup. Delete it and ${DEVNET_INFO_FILE} to start a fresh devnet.`,
  )
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Reads <dataDir>/devnet.json; undefined when it does not exist. Fields this module does not know are kept, so a
 * read-modify-write by anyone preserves them. The fine-tuning addresses are optional: a devnet.json written before
 * fine-tuning existed has none (startDevnet adds them).
 */
export async function readDevnetInfo(dataDir: string): Promise<StoredDevnetInfo | undefined> {
  const file = join(dataDir, DEVNET_INFO_FILE)
  const text = await readOptional(file)
  if (text === undefined) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  const info = raw as Partial<DevnetInfo> | null
  const contracts = info?.contracts as Partial<Record<keyof DeployedContracts, unknown>> | undefined
  const addresses = ['ledger', 'inference', 'ledgerBeacon', 'inferenceBeacon', 'ledgerImpl', 'inferenceImpl'] as const
  const optional = ['fineTuning', 'fineTuningBeacon', 'fineTuningImpl'] as const
  const isAddressText = (v: unknown) => typeof v === 'string' && isAddress(v)
  if (
    !info ||
    typeof info !== 'object' ||
    typeof info.chainId !== 'number' ||
    typeof info.rpcUrl !== 'string' ||
    !contracts ||
    !addresses.every((k) => isAddressText(contracts[k])) ||
    !optional.every((k) => contracts[k] === undefined || isAddressText(contracts[k]))
  ) {
    throw new Error(`${file} does not describe a devnet (chainId, rpcUrl and contract addresses are required)`)
  }
  return info as StoredDevnetInfo
}

/**
 * Writes <dataDir>/devnet.json atomically. Top-level fields of `info` replace those in the file; fields the file has
 * and `info` does not mention are kept (set one to undefined to remove it).
 */
export async function writeDevnetInfo(dataDir: string, info: StoredDevnetInfo): Promise<void> {
  const file = join(dataDir, DEVNET_INFO_FILE)
  let existing: Record<string, unknown> = {}
  const text = await readOptional(file)
  if (text !== undefined) {
    try {
      const parsed = JSON.parse(text)
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) existing = parsed
    } catch {
      // A damaged file has nothing worth keeping.
    }
  }
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`
  await writeFile(tmp, `${JSON.stringify({ ...existing, ...info }, null, 2)}\n`)
  await rename(tmp, file)
}
