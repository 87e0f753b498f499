import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unzipSync } from 'fflate'
import { keccak256, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { TeeSigner } from '../src/attestation/tee-signer.ts'
import type { ZgWalletClients } from '../src/chain/clients.ts'
import { getDeliverable, getFineTuningAccount } from '../src/chain/fine-tuning/index.ts'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { countDatasetTokens } from '../src/fine-tuning/tokens.ts'
import { DEV_TRAINER_COMMAND } from '../src/fine-tuning/trainer.ts'
import type { FineTuningNode } from '../src/provider-node/fine-tuning/server.ts'
import { type FineTuningMarket, startFineTuningMarket } from './support/provider-fine-tuning.ts'

// The official SDK (CommonJS) and its peer ethers, exactly as a 0G user runs them.
const require = createRequire(import.meta.url)
const { createZGComputeNetworkBroker } = require('@0gfoundation/0g-compute-ts-sdk')
const { JsonRpcProvider, Wallet } = require('ethers')

const PRICE = 10n ** 13n
const DATASET = `${[
  {
    messages: [
      { role: 'user', content: 'Tell me about the sea.' },
      { role: 'assistant', content: 'Arr, the briny deep be vast, matey, full of galleons and krakens.' },
    ],
  },
  { instruction: 'Say goodbye', output: 'Fair winds and following seas, ye landlubber!' },
  { text: 'Yo ho ho and a bottle of rum, the jolly roger flies.' },
]
  .map((r) => JSON.stringify(r))
  .join('\n')}\n`

let m: FineTuningMarket
let provider: ZgWalletClients
let signer: TeeSigner
let node: FineTuningNode
let dir: string

beforeAll(async () => {
  // The SDK prints every URL it calls (getTask is polled here): kept out of the test output.
  vi.spyOn(console, 'log').mockImplementation(() => {})
  m = await startFineTuningMarket()
  provider = m.clientsOf(2)
  signer = await m.signer('provider')
  node = await m.startNode(provider, signer, { trainer: DEV_TRAINER_COMMAND, models: [DEV_CHAT_MODEL] })
  await m.register(provider, { url: node.url, signer: signer.address, models: [DEV_CHAT_MODEL], pricePerToken: PRICE })
  dir = mkdtempSync(join(tmpdir(), 'zg-sdk-ft-'))
}, 60_000)
afterAll(async () => {
  vi.restoreAllMocks()
  await m?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe('interop with the official 0G SDK fine-tuning broker (@0gfoundation/0g-compute-ts-sdk 0.9.0)', () => {
  it('funds, uploads, creates a task, acknowledges the model, and decrypts it once the node has settled', async () => {
    const wallet = new Wallet(
      anvilPrivateKey(1),
      new JsonRpcProvider(m.anvil.rpcUrl, undefined, { staticNetwork: true }),
    )
    const broker = await createZGComputeNetworkBroker(
      wallet,
      m.contracts.ledger,
      m.contracts.inference,
      m.contracts.fineTuning,
    )
    const providerAddress = provider.walletClient.account.address
    const user = wallet.address as `0x${string}`
    await broker.ledger.addLedger(5)
    await broker.ledger.transferFund(providerAddress, 'fine-tuning', parseEther('2'))
    const before = (await getFineTuningAccount(provider, user, providerAddress))!
    expect(before).toMatchObject({ balance: parseEther('2'), acknowledged: true })

    const datasetPath = join(dir, 'pirate.jsonl')
    writeFileSync(datasetPath, DATASET)
    const uploaded = await broker.fineTuning.uploadDatasetToTEE(providerAddress, datasetPath)
    expect(uploaded.datasetHash).toBe(keccak256(Buffer.from(DATASET)))

    // The queue is empty, so createTask does not ask whether to wait; the model is not one the SDK knows by name,
    // so it asks the provider for its hash (/v1/model/{name}).
    expect(await (await fetch(`${node.url}/v1/task/pending`)).text()).toBe('0')
    const configPath = join(dir, 'config.json')
    writeFileSync(configPath, JSON.stringify({ num_train_epochs: 3, learning_rate: 0.0002 }))
    const taskId: string = await broker.fineTuning.createTask(
      providerAddress,
      DEV_CHAT_MODEL,
      uploaded.datasetHash,
      configPath,
    )
    expect(taskId).toMatch(/^[0-9a-f-]{36}$/)
    const fee = BigInt(countDatasetTokens(DATASET)) * PRICE * 3n

    const delivered = await until(
      () => broker.fineTuning.getTask(providerAddress, taskId),
      (t: { progress: string }) => ['Delivered', 'Failed'].includes(t.progress),
      'the task to be delivered',
    )
    expect(delivered).toMatchObject({ id: taskId, progress: 'Delivered', fee: fee.toString() })
    expect(await broker.fineTuning.getLog(providerAddress, taskId)).toMatch(/delivered: on chain/)

    // The SDK downloads from our node (TEE path), checks the root hash and acknowledges on chain.
    const encryptedPath = join(dir, 'model.enc')
    await broker.fineTuning.acknowledgeModel(providerAddress, taskId, encryptedPath, { downloadMethod: 'tee' })
    expect(keccak256(readFileSync(encryptedPath))).toBe(
      (await getDeliverable(provider, user, providerAddress, taskId))!.modelRootHash,
    )
    await node.followChain()
    const settled = await until(
      () => getDeliverable(provider, user, providerAddress, taskId),
      (d) => Boolean(d?.settled),
      'the settlement',
    )
    expect(settled).toMatchObject({ acknowledged: true, settled: true })
    expect((await broker.fineTuning.getTask(providerAddress, taskId)).progress).toBe('Finished')
    expect((await getFineTuningAccount(provider, user, providerAddress))!.balance).toBe(before.balance - fee)

    // decryptModel: the secret with the wallet's key, then the file with it, the TEE signer's signature checked.
    const zipPath = join(dir, 'model.zip')
    await broker.fineTuning.decryptModel(providerAddress, taskId, encryptedPath, zipPath)
    const files = unzipSync(readFileSync(zipPath))
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.json']))
    const config = JSON.parse(new TextDecoder().decode(files['adapter_config.json']))
    expect(config).toMatchObject({ base_model_name_or_path: DEV_CHAT_MODEL, trainer: 'zg-dev-trainer' })
    const model = JSON.parse(new TextDecoder().decode(files['adapter_model.json']))
    expect(model.vocabulary).toEqual(expect.arrayContaining(['arr', 'matey']))
  }, 180_000)
})
