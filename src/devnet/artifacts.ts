import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Abi, Hex } from 'viem'

/** A contract's ABI (JSON) and creation bytecode. */
export type Artifact = { abi: Abi; bytecode: Hex }

export type ZgArtifacts = { ledger: Artifact; inference: Artifact; fineTuning: Artifact }

export type OpenZeppelinContract = 'UpgradeableBeacon' | 'BeaconProxy'

const require = createRequire(import.meta.url)

let zgArtifacts: ZgArtifacts | undefined
const ozArtifacts = new Map<OpenZeppelinContract, Artifact>()

/**
 * The real LedgerManager, InferenceServing and FineTuningServing creation bytecode from the official SDK
 * (@0gfoundation/0g-compute-ts-sdk 0.9.0, equal to the mainnet implementations: 0g-protocol.md §9). The package's
 * `exports` exposes only its index, so the typechain factories are required by file path next to its main file.
 */
export function loadZgArtifacts(): ZgArtifacts {
  if (zgArtifacts) return zgArtifacts
  // main is lib.commonjs/index.js; the factories live below lib.commonjs/.
  const libDir = dirname(require.resolve('@0gfoundation/0g-compute-ts-sdk'))
  const ledger = factory(
    join(libDir, 'ledger/contract/typechain/factories/LedgerManager__factory.js'),
    'LedgerManager__factory',
  )
  const inference = factory(
    join(libDir, 'inference/contract/typechain/factories/InferenceServing__factory.js'),
    'InferenceServing__factory',
  )
  const fineTuning = factory(
    join(libDir, 'fine-tuning/contract/typechain/factories/FineTuningServing__factory.js'),
    'FineTuningServing__factory',
  )
  zgArtifacts = { ledger, inference, fineTuning }
  return zgArtifacts
}

function factory(file: string, exportName: string): Artifact {
  const mod = require(file) as Record<string, { abi?: unknown; bytecode?: unknown } | undefined>
  const cls = mod[exportName]
  return checked({ abi: cls?.abi, bytecode: cls?.bytecode }, `${exportName} in ${file}`)
}

/** OpenZeppelin 5.7.0's compiled UpgradeableBeacon or BeaconProxy, the proxy pair production deploys behind. */
export function loadOpenZeppelinArtifact(name: OpenZeppelinContract): Artifact {
  let artifact = ozArtifacts.get(name)
  if (!artifact) {
    const file = require.resolve(`@openzeppelin/contracts/build/contracts/${name}.json`)
    const json = require(file) as { abi?: unknown; bytecode?: unknown }
    artifact = checked(json, file)
    ozArtifacts.set(name, artifact)
  }
  return artifact
}

function checked(raw: { abi?: unknown; bytecode?: unknown }, where: string): Artifact {
  const { abi, bytecode } = raw
  if (
    !Array.isArray(abi) ||
    typeof bytecode !== 'string' ||
    !/^0x[0-9a-fA-F]+$/.test(bytecode) ||
    bytecode.length < 4
  ) {
    throw new Error(`No ABI and creation bytecode found in ${where}`)
  }
  return { abi: abi as Abi, bytecode: bytecode as Hex }
}
