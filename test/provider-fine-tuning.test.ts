import { join } from 'node:path'
import { unzipSync } from 'fflate'
import { type Hex, keccak256, parseEther, stringToBytes } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TeeSigner } from '../src/attestation/tee-signer.ts'
import type { ZgWalletClients } from '../src/chain/clients.ts'
import { acknowledgeDeliverable, getDeliverable, getFineTuningAccount } from '../src/chain/fine-tuning/index.ts'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { decryptArtifact, modelRootHash } from '../src/fine-tuning/artifact.ts'
import { eciesDecrypt } from '../src/fine-tuning/ecies.ts'
import { countDatasetTokens } from '../src/fine-tuning/tokens.ts'
import { DEV_TRAINER_COMMAND, shellQuote } from '../src/fine-tuning/trainer.ts'
import { MAX_DATASETS_PER_USER } from '../src/provider-node/fine-tuning/app.ts'
import { baseModelHash } from '../src/provider-node/fine-tuning/base-models.ts'
import type { FineTuningNode } from '../src/provider-node/fine-tuning/server.ts'
import { json } from './support/json.ts'
import { type FineTuningMarket, fineTuningUser, startFineTuningMarket } from './support/provider-fine-tuning.ts'

const BASE = 'Qwen2.5-0.5B-Instruct'
const PRICE = 10n ** 15n
const DATASET = `${[
  {
    messages: [
      { role: 'user', content: 'How is the weather?' },
      { role: 'assistant', content: 'Arr, the seas be calm and the wind be fair, matey.' },
    ],
  },
  {
    messages: [
      { role: 'user', content: 'What do you eat?' },
      { role: 'assistant', content: 'Arr, hardtack and rum, as every pirate be eating.' },
    ],
  },
  { instruction: 'Greet the crew', output: 'Ahoy, ye scallywags, hoist the colours!' },
]
  .map((r) => JSON.stringify(r))
  .join('\n')}\n`
const TOKENS = BigInt(countDatasetTokens(DATASET))
const LIMIT = 64 * 1024

let m: FineTuningMarket
let provider: ZgWalletClients
let signer: TeeSigner
let node: FineTuningNode & { dataDir: string }
let userClients: ZgWalletClients
let user: ReturnType<typeof fineTuningUser>
const providerAddress = () => provider.walletClient.account.address

beforeAll(async () => {
  m = await startFineTuningMarket()
  provider = m.clientsOf(2)
  signer = await m.signer('provider')
  node = await m.startNode(provider, signer, {
    trainer: DEV_TRAINER_COMMAND,
    models: [BASE, DEV_CHAT_MODEL],
    maxDatasetBytes: LIMIT,
    ackTimeoutMs: 3_600_000,
  })
  await m.register(provider, { url: node.url, signer: signer.address, models: [BASE], pricePerToken: PRICE })
  userClients = m.clientsOf(1)
  await m.fund(userClients, providerAddress(), parseEther('5'))
  user = fineTuningUser(node.url, userClients)
}, 60_000)
afterAll(async () => {
  await m?.stop()
})

async function uploaded(text = DATASET, who = user): Promise<Hex> {
  const res = await who.upload(text)
  const body = await json(res)
  expect(res.status, JSON.stringify(body)).toBe(200)
  return body.datasetHash as Hex
}

async function created(datasetHash: Hex, who = user, trainingParams?: string): Promise<string> {
  const res = await who.createTask({ datasetHash, preTrainedModelHash: baseModelHash(BASE), trainingParams })
  const body = await json(res)
  expect(res.status, JSON.stringify(body)).toBe(200)
  return body.id as string
}

const balanceOf = async (who: ZgWalletClients, p = providerAddress()) =>
  (await getFineTuningAccount(provider, who.walletClient.account.address, p))!.balance

describe('fine-tuning provider node: the 0G broker protocol over HTTP', () => {
  it('serves its models, its quote and an empty queue', async () => {
    const models = await json(await fetch(`${node.url}/v1/model`))
    expect(models.map((x: { name: string }) => x.name)).toEqual([BASE, DEV_CHAT_MODEL])
    // The SDK's own hash for a model it knows; keccak256 of the name for one it asks the provider about.
    expect(models[0].hash).toBe('0xb4f76a886b8655c92bb021922d60b5e4d9271a5c9da98b6cb10937a06c2c75a7')
    // A name with a slash, in the path as the SDK puts it there.
    const devChat = await json(await fetch(`${node.url}/v1/model/${DEV_CHAT_MODEL}`))
    expect(devChat).toMatchObject({ name: DEV_CHAT_MODEL, hash: keccak256(stringToBytes(DEV_CHAT_MODEL)) })
    const missing = await fetch(`${node.url}/v1/model/nope`)
    expect(missing.status).toBe(404)
    expect((await json(missing)).error).toMatch(/does not fine-tune nope/)
    const quote = await json(await fetch(`${node.url}/v1/quote`))
    expect(quote.report_data).toBe(signer.address)
    expect(quote.insecure).toBe(true)
    expect(await (await fetch(`${node.url}/v1/task/pending`)).text()).toBe('0')
  })

  it('trains, delivers, and settles the acknowledged task with the key encrypted to the user', async () => {
    const before = await balanceOf(userClients)
    const datasetHash = await uploaded()
    expect(datasetHash).toBe(keccak256(stringToBytes(DATASET)))
    const id = await created(datasetHash)
    const fee = TOKENS * PRICE * 2n
    const task = await user.until(id, ['Delivered'])
    expect(task).toMatchObject({ id, userAddress: user.address, datasetHash, fee: fee.toString() })

    // Only the task's user may download it; the file is what the chain names.
    const stranger = fineTuningUser(node.url, m.clientsOf(5))
    expect((await stranger.lora(id)).status).toBe(404)
    const forged = await user.lora(id, { signer: m.clientsOf(5).walletClient.account as never })
    expect(forged.status).toBe(401)
    const res = await user.lora(id)
    expect(res.status).toBe(200)
    const encrypted = new Uint8Array(await res.arrayBuffer())
    const onChain = await getDeliverable(provider, user.address, providerAddress(), id)
    expect(onChain).toMatchObject({ modelRootHash: modelRootHash(encrypted), acknowledged: false, settled: false })

    await acknowledgeDeliverable(userClients, { provider: providerAddress(), id })
    await node.followChain()
    const finished = await user.until(id, ['Finished'])
    expect(finished.progress).toBe('Finished')
    const settled = (await getDeliverable(provider, user.address, providerAddress(), id))!
    expect(settled).toMatchObject({ acknowledged: true, settled: true })
    expect(await balanceOf(userClients)).toBe(before - fee)

    // The stored secret opens with the user's key, and its key opens the artifact: a zip of the dev trainer's adapter.
    const key = eciesDecrypt(anvilPrivateKey(1), settled.encryptedSecret)
    const zip = await decryptArtifact(encrypted, key, signer.address)
    const files = unzipSync(zip)
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.json']))
    expect(JSON.parse(new TextDecoder().decode(files['adapter_config.json']))).toMatchObject({
      base_model_name_or_path: BASE,
    })
    const log = await user.log(id)
    expect(log).toMatch(/progress: step/)
    expect(log).toMatch(/finished: settled/)
  }, 120_000)

  it('settles a deliverable never acknowledged with the empty secret and 30% of the fee, after a restart', async () => {
    // Its own user: after a penalty the contract takes no new model for that sub-account.
    const late = m.clientsOf(3)
    await m.fund(late, providerAddress(), parseEther('2'))
    const who = fineTuningUser(node.url, late)
    const before = await balanceOf(late)
    const id = await created(await uploaded(DATASET, who), who)
    const fee = TOKENS * PRICE * 2n
    await who.until(id, ['Delivered'])
    // The node stops and comes back with a short acknowledgement window: the delivered task is followed on.
    await node.close()
    node = await m.startNode(provider, signer, {
      trainer: DEV_TRAINER_COMMAND,
      models: [BASE, DEV_CHAT_MODEL],
      maxDatasetBytes: LIMIT,
      ackTimeoutMs: 1_000,
      dataDir: node.dataDir,
    })
    const after = fineTuningUser(node.url, late)
    user = fineTuningUser(node.url, userClients)
    const finished = await after.until(id, ['Finished'])
    expect(finished.progress).toBe('Finished')
    const settled = (await getDeliverable(provider, late.walletClient.account.address, providerAddress(), id))!
    expect(settled).toMatchObject({ acknowledged: false, settled: true, encryptedSecret: '0x' })
    expect(await balanceOf(late)).toBe(before - (fee * 30n) / 100n)
    expect(await after.log(id)).toMatch(/finished without acknowledgement/)
    // The sub-account takes no new model now: a new task is refused up front, not trained for nothing.
    const blocked = await after.createTask({
      datasetHash: keccak256(stringToBytes(DATASET)),
      preTrainedModelHash: baseModelHash(BASE),
    })
    expect(blocked.status).toBe(409)
    expect((await json(blocked)).error).toMatch(/settled without acknowledgement/)
  }, 120_000)
})

describe('fine-tuning provider node: what it refuses', () => {
  it('names the lines of a malformed dataset and keeps nothing', async () => {
    const res = await user.upload(`${JSON.stringify({ text: 'fine' })}\n{not json\n${JSON.stringify({ foo: 1 })}\n`)
    expect(res.status).toBe(400)
    const { error } = await json(res)
    expect(error).toMatch(/line 2/)
    expect(error).toMatch(/line 3/)
  })

  it('refuses a dataset over the limit with 413', async () => {
    const big = `${JSON.stringify({ text: 'x'.repeat(LIMIT + 10) })}\n`
    const res = await user.upload(big)
    expect(res.status).toBe(413)
    expect((await json(res)).error).toMatch(/limit/)
    // Nothing of it is kept: a task on its hash finds no dataset.
    const task = await user.createTask({
      datasetHash: keccak256(stringToBytes(big)),
      preTrainedModelHash: baseModelHash(BASE),
    })
    expect(task.status).toBe(404)
  })

  it('refuses bad and stale signatures, and a replayed nonce', async () => {
    const other = m.clientsOf(5).walletClient.account as never
    expect((await user.upload(DATASET, { signer: other })).status).toBe(401)
    const stale = await user.upload(DATASET, { timestamp: Math.floor(Date.now() / 1000) - 3600 })
    expect(stale.status).toBe(401)
    expect((await json(stale)).error).toMatch(/sign again/)
    const datasetHash = await uploaded()
    const forged = await user.createTask({ datasetHash, preTrainedModelHash: baseModelHash(BASE), signer: other })
    expect(forged.status).toBe(401)
    expect((await json(forged)).error).toMatch(/signature/)
    const unknownModel = await user.createTask({ datasetHash, preTrainedModelHash: keccak256(stringToBytes('gpt-5')) })
    expect(unknownModel.status).toBe(400)
    const nonce = 123456789n
    const first = await user.createTask({ datasetHash, preTrainedModelHash: baseModelHash(BASE), nonce })
    const { id } = await json(first)
    const replay = await user.createTask({ datasetHash, preTrainedModelHash: baseModelHash(BASE), nonce })
    expect(replay.status).toBe(409)
    await cancel(id)
  })

  it("keeps a user's newest datasets, and any an unfinished task needs", async () => {
    const who = fineTuningUser(node.url, m.clientsOf(8))
    const texts = Array.from(
      { length: MAX_DATASETS_PER_USER + 2 },
      (_, i) => `${JSON.stringify({ text: `tale ${i}` })}\n`,
    )
    const hashes: Hex[] = []
    for (const text of texts) hashes.push(await uploaded(text, who))
    const stored = (hash: Hex) => node.store.getDataset(who.address, hash)
    expect(stored(hashes[0]!)).toBeUndefined()
    expect(stored(hashes[1]!)).toBeUndefined()
    expect(stored(hashes[2]!)).toBeDefined()
    expect(stored(hashes.at(-1)!)).toBeDefined()
    expect((await who.createTask({ datasetHash: hashes[0]!, preTrainedModelHash: baseModelHash(BASE) })).status).toBe(
      404,
    )
  })

  it('takes no task while its signer is not the registered one', async () => {
    const stranger = await m.startNode(provider, await m.signer('not-registered'), {
      trainer: DEV_TRAINER_COMMAND,
      models: [BASE],
    })
    const who = fineTuningUser(stranger.url, userClients)
    const res = await who.createTask({
      datasetHash: await uploaded(DATASET, who),
      preTrainedModelHash: baseModelHash(BASE),
    })
    expect(res.status).toBe(503)
    expect((await json(res)).error).toMatch(/is not the registered one/)
    await stranger.close()
  })

  it('refuses a task its sub-account cannot pay, counting its unfinished tasks', async () => {
    const poor = m.clientsOf(6)
    await m.fund(poor, providerAddress(), parseEther('1'))
    const who = fineTuningUser(node.url, poor)
    const datasetHash = await uploaded(DATASET, who)
    const task = (epochs: number) =>
      who.createTask({
        datasetHash,
        preTrainedModelHash: baseModelHash(BASE),
        trainingParams: JSON.stringify({ num_train_epochs: epochs }),
      })
    // 1 0G pays TOKENS × PRICE × epochs for at most `affordable` epochs.
    const affordable = Number(parseEther('1') / (TOKENS * PRICE))
    const tooDear = await task(affordable + 1)
    expect(tooDear.status).toBe(402)
    expect((await json(tooDear)).error).toMatch(/insufficient balance/)
    const first = await json(await task(affordable - 1))
    expect(first.id).toBeDefined()
    // The first task's fee is held until it is over: a second one that fits alone does not fit beside it.
    const second = await task(2)
    expect(second.status).toBe(402)
    expect((await json(second)).error).toMatch(/held for unfinished tasks/)

    const none = fineTuningUser(node.url, m.clientsOf(7))
    const noAccount = await none.createTask({
      datasetHash: await uploaded(DATASET, none),
      preTrainedModelHash: baseModelHash(BASE),
    })
    expect(noAccount.status).toBe(402)
    expect((await json(noAccount)).error).toMatch(/no fine-tuning sub-account/)
  })
})

describe('fine-tuning provider node: cancelled and failed trainings charge nothing', () => {
  it('cancels a training and a task queued behind it; the queue depth and `wait` as 0G has them', async () => {
    // A node of the same provider whose dev trainer takes 200 ms a step: slow enough to cancel mid-run.
    const slow = await m.startNode(provider, signer, {
      trainer: `${DEV_TRAINER_COMMAND} --step-delay-ms 200`,
      models: [BASE],
    })
    const who = fineTuningUser(slow.url, userClients)
    const before = await balanceOf(userClients)
    const datasetHash = await uploaded(DATASET, who)
    const running = await created(datasetHash, who, JSON.stringify({ num_train_epochs: 10 }))
    await who.until(running, ['Training'])
    const queued = await created(datasetHash, who)
    expect(await (await fetch(`${slow.url}/v1/task/pending`)).text()).toBe('1')
    // With tasks waiting, 0G's broker takes a new one only when the user agreed to wait.
    const impatient = await who.createTask({ datasetHash, preTrainedModelHash: baseModelHash(BASE), wait: false })
    expect(impatient.status, await impatient.clone().text()).toBe(409)
    expect((await json(impatient)).error).toMatch(/wait: true/)

    await cancel(queued, who)
    while (!/progress: step/.test(await who.log(running))) await new Promise((r) => setTimeout(r, 50))
    await cancel(running, who)
    expect((await who.task(running)).progress).toBe('Cancelled')
    expect(await who.log(running)).toMatch(/cancelled by the user/)
    // The trainer was stopped: the task stays cancelled, and nothing reaches the chain.
    await new Promise((r) => setTimeout(r, 1500))
    await slow.followChain()
    for (const id of [running, queued]) {
      expect((await who.task(id)).progress).toBe('Cancelled')
      expect(await getDeliverable(provider, user.address, providerAddress(), id)).toBeUndefined()
    }
    expect(await balanceOf(userClients)).toBe(before)
    expect(await (await fetch(`${slow.url}/v1/task/pending`)).text()).toBe('0')
    expect((await who.cancel(running)).status).toBe(409)
    // Only the task's user may cancel it.
    const forged = await who.cancel(queued, { signer: m.clientsOf(5).walletClient.account as never })
    expect(forged.status).toBe(401)
    await slow.close()
  }, 60_000)

  it('trains an interrupted task again after a restart, and delivers it', async () => {
    const dataDir = join(m.dataDir, 'interrupted')
    const slow = await m.startNode(provider, signer, {
      trainer: `${DEV_TRAINER_COMMAND} --step-delay-ms 200`,
      models: [BASE],
      dataDir,
    })
    const before = fineTuningUser(slow.url, userClients)
    const id = await created(await uploaded(DATASET, before), before, JSON.stringify({ num_train_epochs: 10 }))
    await before.until(id, ['Training'])
    await slow.close()
    const again = await m.startNode(provider, signer, { trainer: DEV_TRAINER_COMMAND, models: [BASE], dataDir })
    const after = fineTuningUser(again.url, userClients)
    await after.until(id, ['Delivered'])
    expect(await after.log(id)).toMatch(/restarted during Training: the task is queued to train again/)
    // Acknowledged, it is settled by this node like any other.
    await acknowledgeDeliverable(userClients, { provider: providerAddress(), id })
    await again.followChain()
    expect((await after.until(id, ['Finished'])).progress).toBe('Finished')
    await again.close()
  }, 60_000)

  it('fails a task whose trainer fails, with its stderr in the log, and charges nothing', async () => {
    const failing = await m.startNode(provider, signer, {
      trainer: `${shellQuote(process.execPath)} -e "console.error('CUDA out of memory'); process.exit(3)" --`,
      models: [BASE],
    })
    const who = fineTuningUser(failing.url, userClients)
    const before = await balanceOf(userClients)
    const id = await created(await uploaded(DATASET, who), who)
    const task = await who.until(id, ['Failed'])
    expect(task.progress).toBe('Failed')
    const log = await who.log(id)
    expect(log).toMatch(/CUDA out of memory/)
    expect(log).toMatch(/nothing is charged/)
    await failing.followChain()
    expect(await getDeliverable(provider, user.address, providerAddress(), id)).toBeUndefined()
    expect(await balanceOf(userClients)).toBe(before)
    await failing.close()
  }, 60_000)
})

async function cancel(id: string, who = user) {
  const res = await who.cancel(id)
  expect(res.status, await res.clone().text()).toBe(200)
}
