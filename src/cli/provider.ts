import { type Address, formatEther, getAddress, isAddress } from 'viem'
import { acknowledgeTEESignerByOwner } from '../chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addOrUpdateService, type ServiceParams } from '../chain/actions/add-or-update-service.ts'
import { getService } from '../chain/actions/get-service.ts'
import { removeService } from '../chain/actions/remove-service.ts'
import { createZgClients, type ZgWalletClients } from '../chain/clients.ts'
import { parse0G } from '../chain/units.ts'
import { anvilAccount } from '../devnet/anvil.ts'
import { openUsageStore, startProviderNode } from '../provider-node/server.ts'
import { settle } from '../provider-node/settlement.ts'
import { redactUrl } from '../store/postgres/connect.ts'
import { type Command, type CommandGroup, type Options, UsageError, type Values } from './command.ts'
import { loggerFrom, observabilityOptions } from './log-options.ts'
import { networkOptions } from './network-options.ts'
import { printJson, table } from './output.ts'
import { fineTuningCommand } from './provider-fine-tuning.ts'
import { providerClients, providerDir, signerFrom, signerOptions } from './provider-options.ts'
import { untilSignal } from './signals.ts'
import { storeOf } from './store-option.ts'

/** `--store`: the provider's usage store, shared by several nodes of one service when it is Postgres. */
const providerStoreOption: Options = {
  store: {
    type: 'string',
    description:
      'postgres://user:pass@host/db: usage records and settlements in Postgres, shared by several nodes of this provider; settlement runs on one at a time (ZG_STORE_URL; default: SQLite in the data dir)',
  },
}

const serve: Command = {
  summary: 'Serve the 0G provider protocol in front of an OpenAI-compatible backend (vLLM, …)',
  options: {
    ...networkOptions,
    ...signerOptions,
    backend: {
      type: 'string',
      multiple: true,
      description:
        'the backend base URL, e.g. http://127.0.0.1:8000 (required); repeat it for several replicas: calls go to the least busy one that is up',
    },
    'backend-health-interval': {
      type: 'string',
      description: 'with several backends: seconds between health checks of each (GET /v1/models; default 5)',
    },
    'backend-health-timeout': {
      type: 'string',
      description:
        'with several backends: seconds a health check may take before the backend counts as down (default 2)',
    },
    ...providerStoreOption,
    'backend-api-key': { type: 'string', description: 'API key the backend expects (ZG_BACKEND_API_KEY)' },
    host: { type: 'string', description: 'address to listen on (default 127.0.0.1)' },
    port: { type: 'string', description: 'port to listen on (ZG_PROVIDER_PORT; default 8081; 0 = any free port)' },
    reserve: { type: 'string', description: 'balance a user must keep beyond what they owe, in 0G (default 1)' },
    'settle-interval': {
      type: 'string',
      description: 'seconds between settlement runs (default 600; 0 = only on demand)',
    },
    'default-max-tokens': {
      type: 'string',
      description:
        'output cap of a chat call without max_tokens when the backend reports no context length: held and sent (default 4096)',
    },
    'chain-read-budget': {
      type: 'string',
      description: 'seconds a call waits on a chain read before the last known state serves (default 2)',
    },
    'max-stale': {
      type: 'string',
      description: 'seconds the last known sub-account state admits calls while the chain cannot be read (default 600)',
    },
    'stale-risk-limit': {
      type: 'string',
      description: 'most fees admitted per user on a stale sub-account state, in 0G (default: the reserve)',
    },
    ...observabilityOptions,
  },
  async run(values) {
    const backends = ((values.backend as string[] | undefined) ?? []).filter((b) => b !== '')
    if (!backends.length) throw new UsageError('--backend is required')
    const store = storeOf(values)
    const logger = loggerFrom(values, 'provider-node')
    const clients = await providerClients(values)
    const dir = providerDir(values, clients.address)
    const signer = await signerFrom(values, dir)
    const stopSignal = untilSignal()
    const node = await startProviderNode({
      clients,
      backendUrl: backends.length === 1 ? backends[0]! : backends,
      backendHealthIntervalMs: positiveSeconds(values, 'backend-health-interval'),
      backendHealthTimeoutMs: positiveSeconds(values, 'backend-health-timeout'),
      store,
      backendApiKey: (values['backend-api-key'] as string | undefined) ?? process.env.ZG_BACKEND_API_KEY,
      signer,
      dataDir: dir,
      host: (values.host as string | undefined) ?? '127.0.0.1',
      port: Number((values.port as string | undefined) ?? process.env.ZG_PROVIDER_PORT ?? 8081),
      reserve: values.reserve !== undefined ? parse0G(values.reserve as string) : undefined,
      settleIntervalMs: Number((values['settle-interval'] as string | undefined) ?? 600) * 1000,
      defaultMaxTokens: positiveNumber(values, 'default-max-tokens'),
      chainReadBudgetMs: seconds(values, 'chain-read-budget'),
      maxStaleMs: seconds(values, 'max-stale'),
      staleRiskLimit:
        values['stale-risk-limit'] !== undefined ? parse0G(values['stale-risk-limit'] as string) : undefined,
      logger,
      metricsPublic: Boolean(values['metrics-public']),
    })
    const service = await getService(clients, { provider: clients.address })
    const storeKind = store ? 'postgres' : 'sqlite'
    if (values.json) {
      printJson({
        ready: true,
        url: node.url,
        provider: clients.address,
        signer: signer.address,
        tee: signer.kind,
        store: storeKind,
        backends: backends.length,
      })
    } else {
      console.log(
        `provider ${clients.address}, TEE signer ${signer.address} (${signer.kind === 'dstack' ? 'Intel TDX via dstack' : 'insecure dev signer: NOT a TEE'})`,
      )
      console.log(
        `store: ${storeKind} (${store ? redactUrl(store) : dir}); backends: ${node.backends
          .states()
          .map((b) => b.url)
          .join(', ')}`,
      )
      if (!service) console.log(`not registered yet: zg-gateway provider register --url ${node.url} …`)
      else if (service.teeSignerAddress.toLowerCase() !== signer.address.toLowerCase()) {
        console.log(
          `warning: the registered TEE signer is ${service.teeSignerAddress}, not this node's ${signer.address}`,
        )
      }
      console.log(`ready: ${node.url}`)
    }
    await stopSignal
    await node.close()
    return 0
  },
}

function positiveNumber(values: Values, name: string): number | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^[1-9]\d*$/.test(v)) throw new UsageError(`--${name} is a whole number above 0`)
  return Number(v)
}

function positiveSeconds(values: Values, name: string): number | undefined {
  const ms = seconds(values, name)
  if (ms === 0) throw new UsageError(`--${name} is a number of seconds above 0`)
  return ms
}

function seconds(values: Values, name: string): number | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  const n = Number(v)
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new UsageError(`--${name} is a number of seconds`)
  return n * 1000
}

const serviceOptions: Options = {
  url: { type: 'string', description: 'public URL of the provider node' },
  model: { type: 'string', description: 'model id served' },
  'service-type': {
    type: 'string',
    description: 'chatbot | text-to-image | speech-to-text | embedding (default chatbot)',
  },
  'input-price': { type: 'string', description: 'neuron per input token (per second for speech-to-text)' },
  'output-price': { type: 'string', description: 'neuron per output token (per image for text-to-image)' },
  verifiability: { type: 'string', description: 'TeeML (responses signed in a TEE) or standard (default TeeML)' },
  'additional-info': { type: 'string', description: 'additionalInfo JSON (≤ 4096 bytes)' },
}

function neuron(values: Values, name: string): bigint | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${name} is a whole number of neuron`)
  return BigInt(v)
}

/** On the devnet the contract owner (anvil account 0) acknowledges the signer, as 0G's owner does on mainnet. */
async function ownerAcknowledgesOnDevnet(clients: ZgWalletClients, provider: Address): Promise<boolean> {
  if (clients.network.name !== 'devnet') return false
  const owner = createZgClients({ network: clients.network, account: anvilAccount(0) })
  await acknowledgeTEESignerByOwner(owner, { provider })
  return true
}

async function registerOrUpdate(values: Values, update: boolean) {
  const clients = await providerClients(values)
  const current = await getService(clients, { provider: clients.address })
  if (update && !current) throw new UsageError('no service is registered for this wallet: use provider register')
  if (!update && current) throw new UsageError('a service is already registered for this wallet: use provider update')
  let signerAddress = current?.teeSignerAddress
  if (values['insecure-dev-signer'] || values.dstack !== undefined) {
    signerAddress = (await signerFrom(values, providerDir(values, clients.address))).address
  }
  const explicit = values['tee-signer'] as string | undefined
  if (explicit !== undefined) {
    if (!isAddress(explicit, { strict: false })) throw new UsageError(`--tee-signer is not an address: ${explicit}`)
    signerAddress = getAddress(explicit)
  }
  if (!signerAddress) throw new UsageError('name the TEE signer: --tee-signer, --insecure-dev-signer or --dstack')
  const service: ServiceParams = {
    serviceType: (values['service-type'] as string | undefined) ?? current?.serviceType ?? 'chatbot',
    url: (values.url as string | undefined) ?? current?.url ?? '',
    model: (values.model as string | undefined) ?? current?.model ?? '',
    verifiability: (values.verifiability as string | undefined) ?? current?.verifiability ?? 'TeeML',
    inputPrice: neuron(values, 'input-price') ?? current?.inputPrice ?? 0n,
    outputPrice: neuron(values, 'output-price') ?? current?.outputPrice ?? 0n,
    additionalInfo: (values['additional-info'] as string | undefined) ?? current?.additionalInfo ?? '{}',
    teeSignerAddress: signerAddress,
  }
  if (!service.url) throw new UsageError('--url is required')
  if (!service.model) throw new UsageError('--model is required')
  const stake = update ? 0n : parse0G((values.stake as string | undefined) ?? '100')
  const result = await addOrUpdateService(clients, { service, stake })
  const after = await getService(clients, { provider: clients.address })
  const acknowledged = after?.teeSignerAcknowledged || (await ownerAcknowledgesOnDevnet(clients, clients.address))
  if (values.json)
    printJson({ provider: clients.address, service, stake, txHash: result.hash, teeSignerAcknowledged: acknowledged })
  else {
    console.log(
      `${update ? 'Updated' : `Registered (stake ${formatEther(stake)} 0G)`} ${service.serviceType} service ${service.model} at ${service.url}`,
    )
    console.log(
      `TEE signer ${signerAddress}: ${acknowledged ? 'acknowledged' : 'waiting for the contract owner to acknowledge it'}`,
    )
  }
  return 0
}

const register: Command = {
  summary: 'Register the inference service on-chain (stakes 100 0G); on the devnet the owner acknowledges the signer',
  options: {
    ...networkOptions,
    ...serviceOptions,
    ...signerOptions,
    'tee-signer': {
      type: 'string',
      description: 'TEE signer address (or derive it with --insecure-dev-signer / --dstack)',
    },
    stake: { type: 'string', description: 'stake in 0G (default 100, the contract minimum)' },
  },
  run: (values) => registerOrUpdate(values, false),
}

const updateCommand: Command = {
  summary: 'Update the registered service (changing model, type, signer or info resets the owner acknowledgement)',
  options: {
    ...networkOptions,
    ...serviceOptions,
    ...signerOptions,
    'tee-signer': { type: 'string', description: 'new TEE signer address' },
  },
  run: (values) => registerOrUpdate(values, true),
}

const remove: Command = {
  summary: 'Remove the service; the stake is returned',
  options: { ...networkOptions },
  async run(values) {
    const clients = await providerClients(values)
    const result = await removeService(clients)
    if (values.json) printJson({ provider: clients.address, txHash: result.hash })
    else console.log(`Service removed; stake returned (tx ${result.hash})`)
    return 0
  },
}

const settleCommand: Command = {
  summary:
    'Settle every unsettled fee on-chain now (settleFeesWithTEE); with a shared --store, only if no node is settling',
  options: { ...networkOptions, ...signerOptions, ...providerStoreOption },
  async run(values) {
    const clients = await providerClients(values)
    const dir = providerDir(values, clients.address)
    const signer = await signerFrom(values, dir)
    const log = (l: string) => console.error(l)
    const { store, close } = await openUsageStore({
      store: storeOf(values),
      dataDir: dir,
      provider: clients.address,
      log,
    })
    try {
      const outcomes = await settle({ clients, store, signer, log })
      const total = outcomes.reduce((s, o) => s + o.settled, 0n)
      if (values.json) printJson({ settled: total, outcomes })
      else if (!outcomes.length) console.log('Nothing to settle.')
      else {
        console.log(
          table([
            ['user', 'status', 'settled', 'records', 'tx'],
            ...outcomes.map((o) => [
              o.user,
              o.status,
              `${formatEther(o.settled)} 0G`,
              String(o.records),
              o.txHash ?? '',
            ]),
          ]),
        )
        console.log(`Settled ${formatEther(total)} 0G in all.`)
      }
      return 0
    } finally {
      await close()
    }
  },
}

export const providerGroup: CommandGroup = {
  summary: 'Run a provider node and manage its on-chain service (bring your own model)',
  commands: { serve, register, update: updateCommand, remove, settle: settleCommand, 'fine-tuning': fineTuningCommand },
}
