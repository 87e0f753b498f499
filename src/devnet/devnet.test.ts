import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getAddress, parseEther, zeroAddress } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fineTuningServingAbi, inferenceServingAbi, ledgerManagerAbi } from '../chain/abi/index.ts'
import { createZgClients } from '../chain/clients.ts'
import { customNetwork } from '../chain/networks.ts'
import { writeContract } from '../chain/write-contract.ts'
import { anvilAccount, increaseTime, startAnvil } from './anvil.ts'
import { deployInferenceContracts } from './deploy.ts'
import { type Devnet, readDevnetInfo, startDevnet, writeDevnetInfo } from './devnet.ts'

const user = anvilAccount(1)

function ledgerOf(devnet: Devnet) {
  const { publicClient } = createZgClients({ network: devnet.network })
  return publicClient.readContract({
    address: devnet.info.contracts.ledger,
    abi: ledgerManagerAbi,
    functionName: 'getLedger',
    args: [user.address],
  })
}

describe('startDevnet', () => {
  let dataDir: string
  const running: Devnet[] = []
  const start = async (opts: { lockTime?: bigint } = {}) => {
    const lines: string[] = []
    const devnet = await startDevnet({ dataDir, port: 0, log: (l) => lines.push(l), ...opts })
    running.push(devnet)
    return { devnet, lines }
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'zg-devnet-'))
  })
  afterAll(async () => {
    await Promise.all(running.map((d) => d.stop()))
    await rm(dataDir, { recursive: true, force: true })
  })

  let first: Devnet
  let lastTimestamp: bigint

  it('deploys into an empty data dir and describes the deployment in devnet.json', async () => {
    const { devnet } = await start()
    first = devnet
    expect(devnet.reused).toBe(false)
    expect(devnet.network.name).toBe('devnet')
    expect(devnet.network.chain.id).toBe(31337)
    expect(devnet.network.contracts).toEqual({
      ledger: devnet.info.contracts.ledger,
      inference: devnet.info.contracts.inference,
      fineTuning: devnet.info.contracts.fineTuning,
    })
    expect(devnet.info.contracts.fineTuning).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect(devnet.info).toMatchObject({
      chainId: 31337,
      rpcUrl: devnet.anvil.rpcUrl,
      owner: anvilAccount(0).address,
      lockTime: '86400',
    })
    expect(await readDevnetInfo(dataDir)).toEqual(devnet.info)

    // State to find again after the restart: a ledger, and a clock moved ahead of the wall clock.
    const clients = createZgClients({ network: devnet.network, account: user })
    await writeContract(clients, {
      address: devnet.info.contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'addLedger',
      args: [''],
      value: parseEther('3'),
    })
    await increaseTime(devnet.anvil.rpcUrl, 2 * 86_400)
    lastTimestamp = (await clients.publicClient.getBlock()).timestamp

    // Fields written later by others (the dev stack) must survive the devnet's own rewrites.
    const provider = { address: anvilAccount(2).address, url: 'http://127.0.0.1:1', name: 'dev-echo' }
    await writeDevnetInfo(dataDir, { ...devnet.info, providers: [provider] })
    const raw = JSON.parse(await readFile(join(dataDir, 'devnet.json'), 'utf8'))
    await writeFile(join(dataDir, 'devnet.json'), JSON.stringify({ ...raw, futureField: { kept: true } }))
    await devnet.stop()
  })

  it('reuses the contracts and the chain state on a restart with the same data dir', async () => {
    const { devnet } = await start({ lockTime: 7200n })
    expect(devnet.reused).toBe(true)
    expect(devnet.info.contracts).toEqual(first.info.contracts)
    expect(devnet.anvil.rpcUrl).not.toBe(first.anvil.rpcUrl)

    const ledger = await ledgerOf(devnet)
    expect(ledger.totalBalance).toBe(parseEther('3'))

    // devnet.json was rewritten (new port, new lock time) without losing what others put there.
    const raw = JSON.parse(await readFile(join(dataDir, 'devnet.json'), 'utf8'))
    expect(raw.rpcUrl).toBe(devnet.anvil.rpcUrl)
    expect(raw.lockTime).toBe('7200')
    expect(raw.providers).toHaveLength(1)
    expect(raw.futureField).toEqual({ kept: true })

    const clients = createZgClients({ network: devnet.network, account: user })
    const lockTime = await clients.publicClient.readContract({
      address: devnet.info.contracts.inference,
      abi: inferenceServingAbi,
      functionName: 'lockTime',
    })
    expect(lockTime).toBe(7200n)
    const fineTuningLockTime = await clients.publicClient.readContract({
      address: devnet.info.contracts.fineTuning,
      abi: fineTuningServingAbi,
      functionName: 'lockTime',
    })
    expect(fineTuningLockTime).toBe(7200n)

    // New blocks do not go back in time although the evm_increaseTime offset is not part of anvil's state.
    await writeContract(clients, {
      address: devnet.info.contracts.ledger,
      abi: ledgerManagerAbi,
      functionName: 'depositFund',
      args: [],
      value: parseEther('1'),
    })
    expect((await clients.publicClient.getBlock()).timestamp).toBeGreaterThan(lastTimestamp)
    await devnet.stop()
  })

  it('recovers from a state file damaged by a crash, from the copy kept at the previous start', async () => {
    await writeFile(join(dataDir, 'chain-state.json'), '{"block":{"number":')
    const { devnet, lines } = await start()
    expect(devnet.reused).toBe(true)
    expect(lines.join('\n')).toMatch(/damaged/)
    expect((await ledgerOf(devnet)).totalBalance).toBe(parseEther('3'))
    await devnet.stop()
  })

  it('deploys anew when the chain no longer has the contracts, and drops what described the old chain', async () => {
    await rm(join(dataDir, 'chain-state.json'))
    await rm(join(dataDir, 'chain-state.json.bak'))
    const { devnet } = await start()
    expect(devnet.reused).toBe(false)
    await expect(ledgerOf(devnet)).rejects.toThrow(/LedgerNotExists/)
    const info = await readDevnetInfo(dataDir)
    expect(info?.providers).toBeUndefined()
    expect(info?.rpcUrl).toBe(devnet.anvil.rpcUrl)
    await devnet.stop()
  })
})

describe('startDevnet on a chain deployed before fine-tuning existed', () => {
  let dataDir: string
  const running: Devnet[] = []
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'zg-devnet-old-'))
    // The devnet of an earlier version: the ledger and the inference contract only, and a devnet.json naming them.
    const anvil = await startAnvil({ port: 0, chainId: 31337, stateFile: join(dataDir, 'chain-state.json') })
    const network = customNetwork({
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      contracts: { ledger: zeroAddress, inference: zeroAddress },
    })
    const contracts = await deployInferenceContracts(createZgClients({ network, account: anvilAccount(0) }))
    await anvil.stop()
    await writeDevnetInfo(dataDir, {
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      contracts,
      owner: anvilAccount(0).address,
      lockTime: '86400',
      deployedAt: new Date().toISOString(),
    })
  })
  afterAll(async () => {
    await Promise.all(running.map((d) => d.stop()))
    await rm(dataDir, { recursive: true, force: true })
  })
  const start = async () => {
    const lines: string[] = []
    const devnet = await startDevnet({ dataDir, port: 0, log: (l) => lines.push(l) })
    running.push(devnet)
    return { devnet, lines }
  }
  const registeredName = (devnet: Devnet) =>
    createZgClients({ network: devnet.network })
      .publicClient.readContract({
        address: devnet.info.contracts.ledger,
        abi: ledgerManagerAbi,
        functionName: 'getServiceInfo',
        args: [devnet.info.contracts.fineTuning],
      })
      .then((info) => info.fullName)

  let fineTuning: string
  it('keeps the chain and deploys the fine-tuning contract next to the old ones', async () => {
    const before = await readDevnetInfo(dataDir)
    expect(before?.contracts.fineTuning).toBeUndefined()
    const { devnet, lines } = await start()
    expect(devnet.reused).toBe(true)
    expect(devnet.info.contracts).toMatchObject(before?.contracts ?? {})
    expect(lines.join('\n')).toMatch(/deployed FineTuningServing/)
    expect(await registeredName(devnet)).toBe('fine-tuning-v1.0')
    expect(devnet.network.contracts.fineTuning).toBe(devnet.info.contracts.fineTuning)
    expect((await readDevnetInfo(dataDir))?.contracts).toEqual(devnet.info.contracts)
    fineTuning = devnet.info.contracts.fineTuning
    await devnet.stop()
  })

  it('finds the registered fine-tuning contract again when devnet.json lost it, rather than deploying another', async () => {
    const raw = JSON.parse(await readFile(join(dataDir, 'devnet.json'), 'utf8'))
    const { fineTuning: _p, fineTuningBeacon: _b, fineTuningImpl: _i, ...contracts } = raw.contracts
    await writeFile(join(dataDir, 'devnet.json'), JSON.stringify({ ...raw, contracts }))
    const { devnet, lines } = await start()
    expect(devnet.reused).toBe(true)
    expect(devnet.info.contracts.fineTuning).toBe(getAddress(fineTuning))
    expect(devnet.info.contracts.fineTuningBeacon).toBe(raw.contracts.fineTuningBeacon)
    expect(devnet.info.contracts.fineTuningImpl).toBe(raw.contracts.fineTuningImpl)
    expect(lines.join('\n')).toMatch(/registered on the ledger/)
    expect(await registeredName(devnet)).toBe('fine-tuning-v1.0')
    await devnet.stop()
  })
})

describe('startDevnet on a taken port', () => {
  let server: Server
  let dataDir: string
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'zg-devnet-port-'))
    server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  })
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve))
    await rm(dataDir, { recursive: true, force: true })
  })

  it('fails with a message that names the port', async () => {
    const { port } = server.address() as { port: number }
    await expect(startDevnet({ dataDir, port })).rejects.toThrow(
      `Cannot start the devnet: port ${port} on 127.0.0.1 is already in use`,
    )
  })
})
