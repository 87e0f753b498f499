import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { getAddress, parseEther, slice, zeroAddress } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fineTuningServingAbi, inferenceServingAbi, ledgerManagerAbi } from '../chain/abi/index.ts'
import { createZgClients, type ZgWalletClients } from '../chain/clients.ts'
import { customNetwork } from '../chain/networks.ts'
import { writeContract } from '../chain/write-contract.ts'
import { type Anvil, anvilAccount, startAnvil } from './anvil.ts'
import { loadOpenZeppelinArtifact } from './artifacts.ts'
import { type DeployedContracts, deployZgContracts } from './deploy.ts'

/** EIP-1967 beacon slot: bytes32(uint256(keccak256('eip1967.proxy.beacon')) - 1). */
const BEACON_SLOT = '0xa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50'
const LOCK_TIME = 3600n

describe('deployZgContracts', () => {
  let anvil: Anvil
  let owner: ZgWalletClients
  let contracts: DeployedContracts

  beforeAll(async () => {
    anvil = await startAnvil()
    const network = customNetwork({
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      contracts: { ledger: zeroAddress, inference: zeroAddress },
    })
    owner = createZgClients({ network, account: anvilAccount(0) })
    contracts = await deployZgContracts({ ...owner, lockTime: LOCK_TIME })
  })
  afterAll(async () => {
    await anvil?.stop()
  })

  it('puts each proxy behind its beacon and each beacon in front of the real implementation', async () => {
    const { publicClient } = owner
    const beaconAbi = loadOpenZeppelinArtifact('UpgradeableBeacon').abi
    for (const [proxy, beacon, impl] of [
      [contracts.ledger, contracts.ledgerBeacon, contracts.ledgerImpl],
      [contracts.inference, contracts.inferenceBeacon, contracts.inferenceImpl],
      [contracts.fineTuning, contracts.fineTuningBeacon, contracts.fineTuningImpl],
    ] as const) {
      const slot = await publicClient.getStorageAt({ address: proxy, slot: BEACON_SLOT })
      expect(getAddress(slice(slot!, 12))).toBe(beacon)
      expect(await publicClient.readContract({ address: beacon, abi: beaconAbi, functionName: 'implementation' })).toBe(
        impl,
      )
      expect(await publicClient.readContract({ address: beacon, abi: beaconAbi, functionName: 'owner' })).toBe(
        anvilAccount(0).address,
      )
    }
  })

  it('initializes the contracts with the owner, the ledger and the configured lock time', async () => {
    const { publicClient } = owner
    const read = publicClient.readContract
    expect(await read({ address: contracts.inference, abi: inferenceServingAbi, functionName: 'lockTime' })).toBe(
      LOCK_TIME,
    )
    expect(await read({ address: contracts.inference, abi: inferenceServingAbi, functionName: 'ledgerAddress' })).toBe(
      contracts.ledger,
    )
    expect(await read({ address: contracts.inference, abi: inferenceServingAbi, functionName: 'owner' })).toBe(
      anvilAccount(0).address,
    )
    expect(await read({ address: contracts.ledger, abi: ledgerManagerAbi, functionName: 'owner' })).toBe(
      anvilAccount(0).address,
    )
    const ft = { address: contracts.fineTuning, abi: fineTuningServingAbi } as const
    expect(await read({ ...ft, functionName: 'lockTime' })).toBe(LOCK_TIME)
    expect(await read({ ...ft, functionName: 'ledgerAddress' })).toBe(contracts.ledger)
    expect(await read({ ...ft, functionName: 'owner' })).toBe(anvilAccount(0).address)
    expect(await read({ ...ft, functionName: 'penaltyPercentage' })).toBe(30n)
  })

  it('registers the inference contract as inference-v1.0', async () => {
    const info = await owner.publicClient.readContract({
      address: contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'getServiceInfo',
      args: [contracts.inference],
    })
    expect(info.fullName).toBe('inference-v1.0')
    expect(info.serviceType).toBe('inference')
    expect(info.version).toBe('v1.0')
    expect(getAddress(info.serviceContract)).toBe(contracts.inference)
  })

  it('registers the fine-tuning contract as fine-tuning-v1.0, both as the recommended versions', async () => {
    const read = owner.publicClient.readContract
    const info = await read({
      address: contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'getServiceInfo',
      args: [contracts.fineTuning],
    })
    expect(info.fullName).toBe('fine-tuning-v1.0')
    expect(getAddress(info.serviceContract)).toBe(contracts.fineTuning)
    for (const [type, address] of [
      ['inference', contracts.inference],
      ['fine-tuning', contracts.fineTuning],
    ] as const) {
      const [version, service] = await read({
        address: contracts.ledger,
        abi: ledgerManagerAbi,
        functionName: 'getRecommendedService',
        args: [type],
      })
      expect({ version, service: getAddress(service) }).toEqual({ version: 'v1.0', service: address })
    }
  })

  it('lands on the addresses the official SDK hard-codes for chain 31337', () => {
    // The package's exports hide constants.js; it sits next to the main file.
    const require = createRequire(import.meta.url)
    const sdkLib = dirname(require.resolve('@0gfoundation/0g-compute-ts-sdk'))
    const { CONTRACT_ADDRESSES } = require(join(sdkLib, 'constants.js')) as {
      CONTRACT_ADDRESSES: { hardhat: { ledger: string; inference: string; fineTuning: string } }
    }
    expect(contracts.ledger).toBe(getAddress(CONTRACT_ADDRESSES.hardhat.ledger))
    expect(contracts.inference).toBe(getAddress(CONTRACT_ADDRESSES.hardhat.inference))
    expect(contracts.fineTuning).toBe(getAddress(CONTRACT_ADDRESSES.hardhat.fineTuning))
  })

  it('lets a user open a ledger with 3 0G', async () => {
    const user = createZgClients({ network: owner.network, account: anvilAccount(1) })
    await writeContract(user, {
      address: contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'addLedger',
      args: [''],
      value: parseEther('3'),
    })
    const ledger = await user.publicClient.readContract({
      address: contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'getLedger',
      args: [anvilAccount(1).address],
    })
    expect(ledger.totalBalance).toBe(parseEther('3'))
    expect(ledger.availableBalance).toBe(parseEther('3'))
  })

  it('refuses a lock time the contract does not accept, with the decoded error', async () => {
    await expect(deployZgContracts({ ...owner, lockTime: 60n })).rejects.toThrow(/LockTimeOutOfRange/)
  })
})
