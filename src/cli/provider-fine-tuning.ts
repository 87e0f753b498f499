import { availableParallelism, totalmem } from 'node:os'
import { join } from 'node:path'
import { type Address, formatEther, getAddress, isAddress } from 'viem'
import { createZgClients, type ZgWalletClients } from '../chain/clients.ts'
import {
  acknowledgeFineTuningSignerByOwner,
  addOrUpdateFineTuningService,
  getFineTuningService,
} from '../chain/fine-tuning/index.ts'
import { parse0G } from '../chain/units.ts'
import { anvilAccount } from '../devnet/anvil.ts'
import { DEV_TRAINER_COMMAND } from '../fine-tuning/trainer.ts'
import { lineLogger } from '../observability/logger.ts'
import { DEFAULT_MAX_DATASET_BYTES, startFineTuningNode } from '../provider-node/fine-tuning/server.ts'
import { type Command, type Options, UsageError, type Values } from './command.ts'
import { loggerFrom } from './log-options.ts'
import { networkOptions } from './network-options.ts'
import { printJson } from './output.ts'
import { providerClients, providerDir, signerFrom, signerOptions } from './provider-options.ts'
import { untilSignal } from './signals.ts'

const serveOptions: Options = {
  trainer: {
    type: 'string',
    description:
      'the trainer command, run as <command> --dataset <file> --base-model <name> --config <json> --output-dir <dir> (required; `dev` = the dev trainer, a small word model, not a neural network)',
  },
  model: {
    type: 'string',
    multiple: true,
    description: 'a base model name the node fine-tunes (required; repeat it for several)',
  },
  host: { type: 'string', description: 'address to listen on (default 127.0.0.1)' },
  port: { type: 'string', description: 'port to listen on (ZG_FINE_TUNING_PORT; default 8082; 0 = any free port)' },
  concurrency: { type: 'string', description: 'trainings at once (default 1)' },
  'trainer-timeout': {
    type: 'string',
    description: 'longest one training may run, e.g. 30m, 12h (default 24h); past it the task fails, uncharged',
  },
  'ack-timeout': {
    type: 'string',
    description:
      "how long a user has to acknowledge a delivered model (default 48h); past it the fee is settled without the key (the contract's 30% penalty)",
  },
  'poll-interval': { type: 'string', description: 'how often the chain is read for acknowledgements (default 5s)' },
  'max-dataset-bytes': { type: 'string', description: 'largest dataset upload in bytes (default 100 MB: 104857600)' },
  'log-level': {
    type: 'string',
    description: 'trace, debug, info (default), warn, error, fatal or silent (ZG_LOG_LEVEL); JSON lines on stderr',
  },
}

const registerOptions: Options = {
  url: { type: 'string', description: 'public URL of the fine-tuning node (required)' },
  'price-per-token': { type: 'string', description: 'neuron per dataset token and epoch (required on registration)' },
  'tee-signer': {
    type: 'string',
    description: 'TEE signer address (or derive it with --insecure-dev-signer / --dstack)',
  },
  'cpu-count': { type: 'string', description: 'quota: CPUs (default: this machine’s)' },
  'node-memory': { type: 'string', description: 'quota: memory in GB (default: this machine’s)' },
  'gpu-count': { type: 'string', description: 'quota: GPUs (default 0)' },
  'node-storage': { type: 'string', description: 'quota: storage in GB (default 100)' },
  'gpu-type': { type: 'string', description: 'quota: GPU type, e.g. H100 (default none)' },
  occupied: { type: 'boolean', description: 'tell users the provider is busy' },
  stake: { type: 'string', description: 'stake in 0G on first registration (default 100, the contract minimum)' },
}

const SUBCOMMANDS = {
  serve: new Set([...Object.keys(serveOptions), 'model']),
  register: new Set([...Object.keys(registerOptions), 'model']),
}
const SHARED = new Set([...Object.keys(networkOptions), ...Object.keys(signerOptions), 'json', 'help'])

/** The provider's wallet on a network with a FineTuningServing (testnet, mainnet, the devnet, or --fine-tuning-ca). */
async function fineTuningClients(values: Values): Promise<ZgWalletClients & { address: Address }> {
  const clients = await providerClients(values)
  if (!clients.network.contracts.fineTuning)
    throw new UsageError(
      'this network has no FineTuningServing contract: pass --fine-tuning-ca with an RPC URL network (the devnet deploys one on start)',
    )
  return clients
}

/** "90", "90s", "30m", "48h", "2d" → ms. */
function duration(values: Values, name: string): number | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  const match = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim()) : null
  if (!match) throw new UsageError(`--${name} is a duration such as 90s, 30m, 48h or 2d`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 's']!
  const ms = Number(match[1]) * unit
  if (!(ms > 0)) throw new UsageError(`--${name} must be above 0`)
  return ms
}

function wholeNumber(values: Values, name: string, min = 0): bigint | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^\d+$/.test(v) || BigInt(v) < BigInt(min))
    throw new UsageError(`--${name} is a whole number${min ? ` of at least ${min}` : ''}`)
  return BigInt(v)
}

function modelsOf(values: Values): string[] {
  const models = ((values.model as string[] | undefined) ?? []).map((m) => m.trim()).filter(Boolean)
  for (const m of models) {
    if (m.length > 256 || /[\s\p{Cc}]/u.test(m)) throw new UsageError(`--model ${m}: a model name has no spaces`)
  }
  return [...new Set(models)]
}

async function serve(values: Values): Promise<number> {
  const trainerFlag = values.trainer as string | undefined
  if (!trainerFlag) throw new UsageError('--trainer is required (a trainer command, or `dev` for the dev trainer)')
  const models = modelsOf(values)
  if (!models.length) throw new UsageError('--model is required: the base model(s) the node fine-tunes')
  const dev = trainerFlag === 'dev'
  const logger = loggerFrom(values, 'fine-tuning-node')
  const clients = await fineTuningClients(values)
  const dir = providerDir(values, clients.address)
  const signer = await signerFrom(values, dir)
  const stopSignal = untilSignal()
  const node = await startFineTuningNode({
    clients,
    signer,
    dataDir: join(dir, 'fine-tuning'),
    models,
    trainer: dev ? DEV_TRAINER_COMMAND : trainerFlag,
    trainerLabel: dev ? 'zg-dev-trainer (a word model fit to the dataset, not a neural network)' : undefined,
    concurrency: Number(wholeNumber(values, 'concurrency', 1) ?? 1n),
    trainerTimeoutMs: duration(values, 'trainer-timeout'),
    ackTimeoutMs: duration(values, 'ack-timeout'),
    pollIntervalMs: duration(values, 'poll-interval'),
    maxDatasetBytes: Number(wholeNumber(values, 'max-dataset-bytes', 1) ?? BigInt(DEFAULT_MAX_DATASET_BYTES)),
    host: (values.host as string | undefined) ?? '127.0.0.1',
    port: Number((values.port as string | undefined) ?? process.env.ZG_FINE_TUNING_PORT ?? 8082),
    log: lineLogger(logger),
  })
  const service = await getFineTuningService(clients, clients.address)
  if (values.json) {
    printJson({
      ready: true,
      url: node.url,
      provider: clients.address,
      signer: signer.address,
      tee: signer.kind,
      models,
    })
  } else {
    console.log(
      `fine-tuning provider ${clients.address}, TEE signer ${signer.address} (${signer.kind === 'dstack' ? 'Intel TDX via dstack' : 'insecure dev signer: NOT a TEE'})`,
    )
    console.log(`models: ${models.join(', ')}; trainer: ${dev ? 'the dev trainer' : trainerFlag}`)
    if (!service) console.log(`not registered yet: zg-gateway provider fine-tuning register --url ${node.url} …`)
    else if (service.teeSignerAddress.toLowerCase() !== signer.address.toLowerCase())
      console.log(
        `warning: the registered TEE signer is ${service.teeSignerAddress}, not this node's ${signer.address}`,
      )
    console.log(`ready: ${node.url}`)
  }
  await stopSignal
  await node.close()
  return 0
}

async function register(values: Values): Promise<number> {
  const clients = await fineTuningClients(values)
  const current = await getFineTuningService(clients, clients.address)
  let teeSignerAddress = current?.teeSignerAddress
  if (values['insecure-dev-signer'] || values.dstack !== undefined)
    teeSignerAddress = (await signerFrom(values, providerDir(values, clients.address))).address
  const explicit = values['tee-signer'] as string | undefined
  if (explicit !== undefined) {
    if (!isAddress(explicit, { strict: false })) throw new UsageError(`--tee-signer is not an address: ${explicit}`)
    teeSignerAddress = getAddress(explicit)
  }
  if (!teeSignerAddress) throw new UsageError('name the TEE signer: --tee-signer, --insecure-dev-signer or --dstack')
  const url = (values.url as string | undefined) ?? current?.url
  if (!url) throw new UsageError('--url is required')
  const pricePerToken = wholeNumber(values, 'price-per-token') ?? current?.pricePerToken
  if (pricePerToken === undefined) throw new UsageError('--price-per-token is required (neuron per token and epoch)')
  const flagged = modelsOf(values)
  const models = flagged.length ? flagged : (current?.models ?? [])
  if (!models.length) throw new UsageError('--model is required: the base model(s) the node fine-tunes')
  const quota = {
    cpuCount: wholeNumber(values, 'cpu-count') ?? current?.quota.cpuCount ?? BigInt(availableParallelism()),
    nodeMemory:
      wholeNumber(values, 'node-memory') ?? current?.quota.nodeMemory ?? BigInt(Math.round(totalmem() / 2 ** 30)),
    gpuCount: wholeNumber(values, 'gpu-count') ?? current?.quota.gpuCount ?? 0n,
    nodeStorage: wholeNumber(values, 'node-storage') ?? current?.quota.nodeStorage ?? 100n,
    gpuType: (values['gpu-type'] as string | undefined) ?? current?.quota.gpuType ?? 'none',
  }
  const stake = current ? 0n : parse0G((values.stake as string | undefined) ?? '100')
  const result = await addOrUpdateFineTuningService(clients, {
    url,
    quota,
    pricePerToken,
    occupied: Boolean(values.occupied),
    models,
    teeSignerAddress,
    stake,
  })
  let acknowledged = (await getFineTuningService(clients, clients.address))?.teeSignerAcknowledged ?? false
  if (!acknowledged && clients.network.name === 'devnet') {
    // On the devnet the contract owner (anvil account 0) acknowledges the signer, as 0G's owner does on mainnet.
    const owner = createZgClients({ network: clients.network, account: anvilAccount(0) })
    await acknowledgeFineTuningSignerByOwner(owner, clients.address)
    acknowledged = true
  }
  if (values.json) {
    printJson({
      provider: clients.address,
      url,
      pricePerToken,
      models,
      quota,
      teeSignerAddress,
      stake,
      txHash: result.hash,
      teeSignerAcknowledged: acknowledged,
    })
  } else {
    console.log(
      `${current ? 'Updated' : `Registered (stake ${formatEther(stake)} 0G)`} fine-tuning service at ${url}: ${models.join(', ')}, ${pricePerToken} neuron per token`,
    )
    console.log(
      `TEE signer ${teeSignerAddress}: ${acknowledged ? 'acknowledged' : 'waiting for the contract owner to acknowledge it'}`,
    )
  }
  return 0
}

/** The help names the subcommand each option belongs to (both take --model). */
function labelled(sub: string, options: Options): Options {
  return Object.fromEntries(
    Object.entries(options).map(([name, o]) => [
      name,
      { ...o, description: `${name === 'model' ? 'serve, register' : sub}: ${o.description}` },
    ]),
  )
}

/**
 * `provider fine-tuning serve|register`: the fine-tuning side of a provider. One command with both option sets
 * (the CLI's groups are one level deep), each subcommand refusing the other's options.
 */
export const fineTuningCommand: Command = {
  summary:
    'Fine-tuning provider: `serve` runs 0G’s fine-tuning broker API and a trainer; `register` puts the service on chain (stakes 100 0G)',
  args: 'serve|register',
  options: {
    ...networkOptions,
    ...signerOptions,
    ...labelled('serve', serveOptions),
    ...labelled('register', registerOptions),
  },
  async run(values, positionals) {
    const [sub, ...extra] = positionals
    if (sub !== 'serve' && sub !== 'register')
      throw new UsageError('use: zg-gateway provider fine-tuning serve|register [options] (see --help)')
    if (extra.length) throw new UsageError(`unexpected argument: ${extra[0]}`)
    for (const [name, value] of Object.entries(values)) {
      if (value !== undefined && !SHARED.has(name) && !SUBCOMMANDS[sub].has(name))
        throw new UsageError(`--${name} is not an option of provider fine-tuning ${sub}`)
    }
    return sub === 'serve' ? serve(values) : register(values)
  },
}
