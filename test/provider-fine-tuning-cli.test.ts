import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ZgWalletClients } from '../src/chain/clients.ts'
import {
  acknowledgeDeliverable,
  acknowledgeFineTuningSignerByOwner,
  getFineTuningAccount,
  getFineTuningService,
} from '../src/chain/fine-tuning/index.ts'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { baseModelHash } from '../src/provider-node/fine-tuning/base-models.ts'
import { json } from './support/json.ts'
import { type FineTuningMarket, fineTuningUser, startFineTuningMarket } from './support/provider-fine-tuning.ts'

const run = promisify(execFile)
const PROVIDER = 4
let m: FineTuningMarket
let provider: ZgWalletClients
let proc: ChildProcess | undefined
let dataDir: string

const chainArgs = () => [
  '--network',
  m.anvil.rpcUrl,
  '--ledger-ca',
  m.contracts.ledger,
  '--inference-ca',
  m.contracts.inference,
  '--fine-tuning-ca',
  m.contracts.fineTuning!,
  '--data-dir',
  dataDir,
]
const env = () => ({ PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(PROVIDER) })

beforeAll(async () => {
  m = await startFineTuningMarket()
  provider = m.clientsOf(PROVIDER)
  dataDir = join(m.dataDir, 'cli')
}, 60_000)
afterAll(async () => {
  proc?.kill('SIGKILL')
  await m?.stop()
})

/** `zg-gateway provider fine-tuning serve` as an operator runs it; resolves with its URL on the ready line. */
function serve(args: string[]): Promise<{ url: string; output: () => string }> {
  const child = spawn(
    process.execPath,
    ['bin/zg-gateway.js', 'provider', 'fine-tuning', 'serve', '--insecure-dev-signer', '--port', '0', ...args],
    { env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
  )
  proc = child
  let out = ''
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d
      const line = /^ready: (\S+)/m.exec(out)
      if (line) resolve({ url: line[1]!, output: () => out })
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code, signal) => reject(new Error(`serve exited ${code ?? signal}:\n${out}`)))
  })
}

describe('zg-gateway provider fine-tuning serve | register', () => {
  it('serves with the dev trainer, registers the service with the same signer, and trains a task to settlement', async () => {
    const node = await serve([
      '--trainer',
      'dev',
      '--model',
      DEV_CHAT_MODEL,
      '--poll-interval',
      '200ms',
      '--ack-timeout',
      '1h',
      ...chainArgs(),
    ])
    expect(node.output()).toMatch(/not registered yet: zg-gateway provider fine-tuning register/)
    const { stdout } = await run(
      process.execPath,
      [
        'bin/zg-gateway.js',
        'provider',
        'fine-tuning',
        'register',
        '--url',
        node.url,
        '--price-per-token',
        '1000000000000',
        '--model',
        DEV_CHAT_MODEL,
        '--gpu-type',
        'none',
        '--insecure-dev-signer',
        '--json',
        ...chainArgs(),
      ],
      { env: env() },
    )
    const registered = JSON.parse(stdout)
    const quote = await json(await fetch(`${node.url}/v1/quote`))
    expect(registered).toMatchObject({
      url: node.url,
      teeSignerAddress: quote.signing_address,
      stake: '100000000000000000000',
    })
    const providerAddress = provider.walletClient.account.address
    // Not the devnet: the contract owner acknowledges the signer (0G's does so on mainnet).
    expect(registered.teeSignerAcknowledged).toBe(false)
    await acknowledgeFineTuningSignerByOwner(m.owner, providerAddress)
    const service = await getFineTuningService(provider, providerAddress)
    expect(service).toMatchObject({
      url: node.url,
      models: [DEV_CHAT_MODEL],
      pricePerToken: 1_000_000_000_000n,
      teeSignerAcknowledged: true,
    })

    const userClients = m.clientsOf(1)
    await m.fund(userClients, providerAddress, parseEther('1'))
    const user = fineTuningUser(node.url, userClients)
    const upload = await json(await user.upload(`${JSON.stringify({ text: 'Ahoy matey, the treasure be buried.' })}\n`))
    const created = await json(
      await user.createTask({ datasetHash: upload.datasetHash, preTrainedModelHash: baseModelHash(DEV_CHAT_MODEL) }),
    )
    await user.until(created.id, ['Delivered'])
    const before = (await getFineTuningAccount(provider, user.address, providerAddress))!.balance
    await acknowledgeDeliverable(userClients, { provider: providerAddress, id: created.id })
    const finished = await user.until(created.id, ['Finished'])
    expect((await getFineTuningAccount(provider, user.address, providerAddress))!.balance).toBe(
      before - BigInt(finished.fee),
    )

    // A second register updates the service, without a second stake.
    const update = await run(
      process.execPath,
      [
        'bin/zg-gateway.js',
        'provider',
        'fine-tuning',
        'register',
        '--price-per-token',
        '2000000000000',
        ...chainArgs(),
      ],
      { env: env() },
    )
    expect(update.stdout).toMatch(/Updated fine-tuning service/)
    expect((await getFineTuningService(provider, providerAddress))?.pricePerToken).toBe(2_000_000_000_000n)

    const exited = new Promise((resolve) => proc!.once('exit', (code) => resolve(code)))
    proc!.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 120_000)

  it("refuses the other subcommand's options and a missing trainer", async () => {
    const fail = (args: string[]) =>
      run(process.execPath, ['bin/zg-gateway.js', 'provider', 'fine-tuning', ...args, ...chainArgs()], {
        env: env(),
      }).then(
        () => '',
        (err: { stderr: string }) => err.stderr,
      )
    expect(await fail(['serve', '--url', 'http://x', '--model', 'm', '--trainer', 'dev'])).toMatch(
      /--url is not an option of provider fine-tuning serve/,
    )
    expect(await fail(['serve', '--model', 'm', '--insecure-dev-signer'])).toMatch(/--trainer is required/)
    expect(await fail(['train'])).toMatch(/serve\|register/)
  })
})
