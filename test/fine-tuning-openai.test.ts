import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import OpenAI, { toFile } from 'openai'
import { type Address, parseAbiItem } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createZgClients } from '../src/chain/clients.ts'
import { getDeliverable, getFineTuningAccount } from '../src/chain/fine-tuning/index.ts'
import { anvilAccount } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { DEV_WALLET_INDEX } from '../src/devnet/dev-stack.ts'
import { type Gateway, startGateway } from '../src/gateway/server.ts'
import { startTestStack } from './support/dev-stack.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
let client: OpenAI

beforeAll(async () => {
  stack = await startTestStack()
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-zg-dev', maxRetries: 0 })
}, 120_000)
afterAll(async () => {
  await stack?.dispose()
})

/** A sea captain's vocabulary: none of it is in the dev chat model's own word list. */
const NAUTICAL = [
  'ahoy',
  'matey',
  'anchor',
  'keel',
  'brine',
  'starboard',
  'port',
  'helm',
  'galley',
  'mast',
  'sail',
  'tide',
]

function dataset(examples: number): string {
  const lines: string[] = []
  for (let i = 0; i < examples; i++) {
    const words = Array.from({ length: 12 }, (_, j) => NAUTICAL[(i * 5 + j * 7) % NAUTICAL.length])
    lines.push(
      JSON.stringify({
        messages: [
          { role: 'system', content: 'You are a ship captain.' },
          { role: 'user', content: `Question ${i}: how is the weather?` },
          { role: 'assistant', content: `${words.join(' ')}.` },
        ],
      }),
    )
  }
  return `${lines.join('\n')}\n`
}

/** The share of an answer's words that come from the nautical vocabulary. */
function nauticalShare(text: string): number {
  const words = text.toLowerCase().match(/[\p{L}']+/gu) ?? []
  return words.length ? words.filter((w) => NAUTICAL.includes(w)).length / words.length : 0
}

async function finished(id: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const job = await client.fineTuning.jobs.retrieve(id)
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job
    if (Date.now() > deadline) {
      const events = await client.fineTuning.jobs.listEvents(id, { limit: 20 })
      const story = events.data.map((e) => `  ${e.message}`).join('\n')
      throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms; its last events:\n${story}`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
}

describe('fine-tuning through the gateway with the official openai client', () => {
  it('uploads a dataset, trains on a 0G provider, and the tuned model answers in its vocabulary', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(dataset(12)), 'captain.jsonl'),
      purpose: 'fine-tune',
    })
    expect(file).toMatchObject({ object: 'file', purpose: 'fine-tune', status: 'processed', filename: 'captain.jsonl' })
    expect((await client.files.retrieve(file.id)).bytes).toBe(file.bytes)

    const created = await client.fineTuning.jobs.create({
      model: DEV_CHAT_MODEL,
      training_file: file.id,
      suffix: 'captain',
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3 } } },
    })
    expect(created.status).toBe('validating_files')
    const job = await finished(created.id)
    expect(job.error).toBeNull()
    expect(job.status).toBe('succeeded')
    expect(job.fine_tuned_model).toBe(`ft:${DEV_CHAT_MODEL}:captain:${created.id.replace('ftjob-', '')}`)

    // The events tell the story, oldest last, with the trainer's progress as metrics.
    const events = await client.fineTuning.jobs.listEvents(created.id, { limit: 1000 })
    const messages = events.data.map((e) => e.message)
    expect(messages[0]).toBe('The job has successfully completed')
    expect(messages.some((m) => /^Step \d+\/\d+: training loss=/.test(m))).toBe(true)
    expect(events.data.some((e) => e.type === 'metrics')).toBe(true)
    expect(messages.some((m) => m.includes('acknowledged on chain'))).toBe(true)

    // The trained adapter is the key's too: a result file to download.
    expect(job.result_files).toHaveLength(1)
    const adapter = Buffer.from(await (await client.files.content(job.result_files[0]!)).arrayBuffer())
    expect(adapter.subarray(0, 2).toString()).toBe('PK')
    expect(adapter.includes(Buffer.from('adapter_config.json'))).toBe(true)

    const models = await client.models.list()
    expect(models.data.map((m) => m.id)).toContain(job.fine_tuned_model)

    const prompt = [{ role: 'user' as const, content: 'Tell me about your day.' }]
    const tuned = await client.chat.completions.create({ model: job.fine_tuned_model!, messages: prompt, seed: 1 })
    const base = await client.chat.completions.create({ model: DEV_CHAT_MODEL, messages: prompt, seed: 1 })
    const tunedText = tuned.choices[0]!.message.content!
    const baseText = base.choices[0]!.message.content!
    expect(nauticalShare(tunedText)).toBeGreaterThan(0.6)
    expect(nauticalShare(baseText)).toBe(0)

    // The tuned model is the key's own: another key neither sees it nor can call it, nor see the job.
    const created2 = (await (
      await fetch(`${stack.gateway.url}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'other' }),
      })
    ).json()) as { key: string }
    const other = new OpenAI({ baseURL: stack.baseURL, apiKey: created2.key, maxRetries: 0 })
    expect((await other.models.list()).data.map((m) => m.id)).not.toContain(job.fine_tuned_model)
    await expect(
      other.chat.completions.create({ model: job.fine_tuned_model!, messages: prompt }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found' })
    await expect(other.fineTuning.jobs.retrieve(created.id)).rejects.toMatchObject({ status: 404 })
    await expect(other.files.content(job.result_files[0]!)).rejects.toMatchObject({ status: 404 })

    // On chain: delivered, acknowledged by the gateway, settled once with the key; the ledger paid the fee exactly.
    const wallet = anvilAccount(DEV_WALLET_INDEX).address
    const chain = createZgClients({ network: stack.devnet.network })
    const provider = stack.fineTuning.address
    const raw = job as unknown as { zg: { task_id: string; fee: string; provider: Address } }
    expect(raw.zg.provider).toBe(provider)
    const deliverable = await getDeliverable(chain, wallet, provider, raw.zg.task_id)
    expect(deliverable).toMatchObject({ acknowledged: true, settled: true })
    expect(deliverable!.encryptedSecret.length).toBeGreaterThan(2)
    const settled = await chain.publicClient.getLogs({
      address: stack.devnet.network.contracts.fineTuning,
      event: parseAbiItem(
        'event FeesSettled(address indexed user, address indexed provider, string deliverableId, uint256 fee, bool acknowledged, uint256 nonce)',
      ),
      fromBlock: 0n,
    })
    const ours = settled.filter((l) => l.args.deliverableId === raw.zg.task_id)
    expect(ours).toHaveLength(1)
    expect(ours[0]!.args.fee).toBe(BigInt(raw.zg.fee))
    expect(ours[0]!.args.acknowledged).toBe(true)
    const spent = await chain.publicClient.getLogs({
      address: stack.devnet.network.contracts.ledger,
      event: parseAbiItem('event FundSpent(address indexed user, address indexed service, uint256 amount)'),
      args: { user: wallet, service: stack.devnet.network.contracts.fineTuning },
      fromBlock: 0n,
    })
    expect(spent.reduce((sum, l) => sum + l.args.amount!, 0n)).toBe(BigInt(raw.zg.fee))
    expect(BigInt(raw.zg.fee)).toBeGreaterThan(0n)
  }, 200_000)

  it('refuses a malformed dataset with line numbers, and keeps nothing', async () => {
    const good = dataset(12).split('\n')
    good[2] = '{"messages": [{"role": "user", "content": "no answer here"}]}'
    good[5] = '{not json'
    const err = await client.files
      .create({ file: await toFile(Buffer.from(good.join('\n')), 'bad.jsonl'), purpose: 'fine-tune' })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    const message = (err as InstanceType<typeof OpenAI.BadRequestError>).message
    expect(message).toMatch(/line 3\b[^;]*assistant/)
    expect(message).toMatch(/line 6 is not valid JSON/)
    expect(message).not.toMatch(/line \d+: line/)
    const files = await client.files.list()
    expect(files.data.map((f) => f.filename)).not.toContain('bad.jsonl')
  })

  it('cancels a job before delivery: cancelled, and nothing charged', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(dataset(10)), 'cancel.jsonl'),
      purpose: 'fine-tune',
    })
    const wallet = anvilAccount(DEV_WALLET_INDEX).address
    const chain = createZgClients({ network: stack.devnet.network })
    const before = await getFineTuningAccount(chain, wallet, stack.fineTuning.address)
    const created = await client.fineTuning.jobs.create({ model: DEV_CHAT_MODEL, training_file: file.id })
    const cancelled = await client.fineTuning.jobs.cancel(created.id)
    expect(cancelled.status).toBe('cancelled')
    expect((await finished(created.id)).status).toBe('cancelled')
    const after = await getFineTuningAccount(chain, wallet, stack.fineTuning.address)
    // The sub-account may have been topped up for the task, but no fee left it.
    expect(after!.balance).toBeGreaterThanOrEqual(before?.balance ?? 0n)
    const task = (cancelled as unknown as { zg: { task_id: string | null } }).zg.task_id
    if (task) expect(await getDeliverable(chain, wallet, stack.fineTuning.address, task)).toBeUndefined()
    // A finished job cannot be cancelled again into something else.
    expect((await client.fineTuning.jobs.cancel(created.id)).status).toBe('cancelled')
  }, 60_000)

  it('refuses a file over the limit with a 413, and a model nobody fine-tunes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'zg-ft-limit-'))
    let small: Gateway | undefined
    try {
      small = await startGateway({
        network: stack.devnet.network,
        wallet: anvilAccount(DEV_WALLET_INDEX),
        dataDir,
        port: 0,
        devKey: 'sk-zg-dev',
        allowPrivateUrls: true,
        autoFund: false,
        reconciliation: false,
        fineTuning: { fileLimit: 4096 },
        log: () => {},
      })
      const limited = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'sk-zg-dev', maxRetries: 0 })
      const err = await limited.files
        .create({ file: await toFile(Buffer.from(dataset(40)), 'big.jsonl'), purpose: 'fine-tune' })
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect((err as { status?: number }).status).toBe(413)
      expect((await limited.files.list()).data).toHaveLength(0)

      const file = await limited.files.create({
        file: await toFile(Buffer.from(dataset(10)), 'ok.jsonl'),
        purpose: 'fine-tune',
      })
      const refused = await limited.fineTuning.jobs.create({ model: 'no-such/model', training_file: file.id }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError)
      expect((refused as Error).message).toMatch(/not available for fine-tuning/)
      for (const [hyperparameters, param] of [
        [{ n_epochs: 1000 }, 'hyperparameters.n_epochs'],
        [{ batch_size: -1 }, 'hyperparameters.batch_size'],
        [{ n_epochs: 'x' }, 'hyperparameters.n_epochs'],
        [{ warmup: 3 }, 'hyperparameters'],
      ] as const) {
        const bad = await limited.fineTuning.jobs
          .create({ model: DEV_CHAT_MODEL, training_file: file.id, hyperparameters } as never)
          .then(
            () => undefined,
            (e: unknown) => e as InstanceType<typeof OpenAI.BadRequestError>,
          )
        expect(bad?.status).toBe(400)
        expect(bad?.param).toBe(param)
      }
      const metadata = await limited.fineTuning.jobs
        .create({ model: DEV_CHAT_MODEL, training_file: file.id, metadata: { a: 1 } } as never)
        .then(
          () => undefined,
          (e: unknown) => e as InstanceType<typeof OpenAI.BadRequestError>,
        )
      expect(metadata?.param).toBe('metadata')
      const wrongMethod = await fetch(`${small.url}/v1/fine_tuning/jobs/ftjob-x/cancel`, {
        headers: { authorization: 'Bearer sk-zg-dev' },
      })
      expect(wrongMethod.status).toBe(405)
      expect(wrongMethod.headers.get('allow')).toBe('POST')
      expect((await limited.fineTuning.jobs.list()).data).toHaveLength(0)
    } finally {
      await small?.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('zg-gateway ft run: upload, train and follow from a script, with --json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-ft-cli-'))
    try {
      const path = join(dir, 'captain.jsonl')
      writeFileSync(path, dataset(10))
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        [
          'bin/zg-gateway.js',
          'ft',
          'run',
          path,
          '--model',
          DEV_CHAT_MODEL,
          '--suffix',
          'cli',
          '--epochs',
          '2',
          '--json',
        ],
        { env: { PATH: process.env.PATH ?? '', ZG_GATEWAY_URL: stack.gateway.url, ZG_API_KEY: 'sk-zg-dev' } },
      )
      const job = JSON.parse(stdout) as {
        status: string
        fine_tuned_model: string
        hyperparameters: { n_epochs: number }
      }
      expect(job).toMatchObject({ status: 'succeeded', hyperparameters: { n_epochs: 2 } })
      expect(job.fine_tuned_model).toMatch(/^ft:dev\/chat-deterministic:cli:/)
      // Progress went to stderr, the events in order.
      expect(stderr).toMatch(/uploaded captain\.jsonl as file-/)
      expect(stderr).toMatch(/Step \d+\/\d+: training loss=/)
      expect(stderr.indexOf('Validating training file')).toBeLessThan(
        stderr.indexOf('The job has successfully completed'),
      )
      const answer = await client.chat.completions.create({
        model: job.fine_tuned_model,
        messages: [{ role: 'user', content: 'Hello?' }],
      })
      expect(nauticalShare(answer.choices[0]!.message.content!)).toBeGreaterThan(0.6)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
