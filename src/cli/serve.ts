import { join } from 'node:path'
import { loadMeasurementPolicy } from '../attestation/evidence/measurement-policy.ts'
import { parse0G } from '../chain/units.ts'
import { corsMatcher } from '../gateway/http/cors.ts'
import { type GatewayOptions, startGateway } from '../gateway/server.ts'
import { ModelAliases } from '../providers/model-aliases.ts'
import type { Command, Values } from './command.ts'
import { UsageError } from './command.ts'
import { loggerFrom, observabilityOptions } from './log-options.ts'
import { dataDirOf, networkOptions, resolveNetwork, resolveWallet } from './network-options.ts'
import { printJson } from './output.ts'
import { untilSignal } from './signals.ts'
import { storeOf, storeOption } from './store-option.ts'

/** The escrow funding policy's settings from --escrow-reserve and --dispute-limit. */
function fundingOptions(values: Values): GatewayOptions['funding'] {
  const reserve = values['escrow-reserve'] as string | undefined
  const limit = values['dispute-limit'] as string | undefined
  if (limit !== undefined && !/^[1-9]\d*$/.test(limit))
    throw new UsageError(`--dispute-limit must be a positive whole number: ${limit}`)
  try {
    return {
      reserve: reserve !== undefined ? parse0G(reserve) : undefined,
      disputes: limit !== undefined ? { count: Number(limit) } : undefined,
    }
  } catch (err) {
    throw new UsageError(`--escrow-reserve: ${(err as Error).message}`)
  }
}

/** The fine-tuning API's settings from --fine-tuning-*, or false for --no-fine-tuning. */
function fineTuningOptions(values: Values): GatewayOptions['fineTuning'] {
  if (values['no-fine-tuning']) return false
  const poll = values['fine-tuning-poll'] as string | undefined
  const limit = values['fine-tuning-file-limit'] as string | undefined
  if (poll !== undefined && !(Number(poll) > 0)) throw new UsageError(`--fine-tuning-poll is seconds above 0: ${poll}`)
  if (limit !== undefined && !/^[1-9]\d*$/.test(limit))
    throw new UsageError(`--fine-tuning-file-limit is a whole number of bytes: ${limit}`)
  return {
    pollMs: poll !== undefined ? Number(poll) * 1000 : undefined,
    fileLimit: limit !== undefined ? Number(limit) : undefined,
  }
}

/** The reconciler's settings from --reconcile-*, or false for --no-reconcile. */
function reconciliationOptions(values: Values): GatewayOptions['reconciliation'] {
  if (values['no-reconcile']) return false
  const from = values['reconcile-from-block'] as string | undefined
  const interval = values['reconcile-interval'] as string | undefined
  const tolerance = values['reconcile-tolerance'] as string | undefined
  if (from !== undefined && !/^\d+$/.test(from))
    throw new UsageError(`--reconcile-from-block must be a block number: ${from}`)
  if (interval !== undefined && !/^[1-9]\d*$/.test(interval))
    throw new UsageError(`--reconcile-interval must be a positive number of seconds: ${interval}`)
  try {
    return {
      fromBlock: from !== undefined ? BigInt(from) : undefined,
      intervalMs: interval !== undefined ? Number(interval) * 1000 : undefined,
      tolerance: tolerance !== undefined ? parse0G(tolerance) : undefined,
    }
  } catch (err) {
    throw new UsageError(`--reconcile-tolerance: ${(err as Error).message}`)
  }
}

/** The provider timeouts from --*-timeout (seconds) or ZG_*_TIMEOUT; unset ones keep their defaults. */
export function timeoutOptions(values: Values, env: NodeJS.ProcessEnv = process.env): GatewayOptions['timeouts'] {
  const out: NonNullable<GatewayOptions['timeouts']> = {}
  for (const [flag, variable, key] of [
    ['connect-timeout', 'ZG_CONNECT_TIMEOUT', 'connectMs'],
    ['first-byte-timeout', 'ZG_FIRST_BYTE_TIMEOUT', 'firstByteMs'],
    ['timeout', 'ZG_TIMEOUT', 'totalMs'],
    ['idle-timeout', 'ZG_IDLE_TIMEOUT', 'idleMs'],
  ] as const) {
    const text = (values[flag] as string | undefined) ?? env[variable]
    if (text === undefined) continue
    const seconds = Number(text)
    if (!(seconds > 0) || !Number.isFinite(seconds))
      throw new UsageError(`--${flag} (${variable}) must be a positive number of seconds: ${text}`)
    out[key] = Math.round(seconds * 1000)
  }
  return out
}

/** The circuit breakers' settings and the probes' period from --breaker-* and --probe-interval. */
function healthOptions(values: Values): GatewayOptions['health'] {
  const seconds = (flag: string) => {
    const text = values[flag] as string | undefined
    if (text === undefined) return undefined
    const n = Number(text)
    if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a positive number of seconds: ${text}`)
    return Math.round(n * 1000)
  }
  const threshold = values['breaker-threshold'] as string | undefined
  if (threshold !== undefined && !/^[1-9]\d*$/.test(threshold))
    throw new UsageError(`--breaker-threshold must be a positive whole number: ${threshold}`)
  return {
    threshold: threshold === undefined ? undefined : Number(threshold),
    cooldownMs: seconds('breaker-cooldown'),
    probeIntervalMs: seconds('probe-interval'),
  }
}

/** Attestation's settings from --pccs-url and --measurement-policy (read and checked now). */
async function attestationOptions(values: Values): Promise<GatewayOptions['attestation']> {
  const pccsUrl = values['pccs-url'] as string | undefined
  const policyFile = values['measurement-policy'] as string | undefined
  if (pccsUrl !== undefined && !URL.canParse(pccsUrl)) throw new UsageError(`--pccs-url is not a URL: ${pccsUrl}`)
  try {
    return {
      pccsUrl,
      measurementPolicy: policyFile === undefined ? undefined : await loadMeasurementPolicy(policyFile),
    }
  } catch (err) {
    throw new UsageError(`--measurement-policy: ${(err as Error).message}`)
  }
}

export const serveCommand: Command = {
  summary: 'Serve the OpenAI-compatible gateway over the providers of a 0G network (mainnet, testnet, or an RPC URL)',
  options: {
    ...networkOptions,
    ...storeOption,
    host: { type: 'string', description: 'address to listen on (default 127.0.0.1)' },
    port: { type: 'string', description: 'port (ZG_PORT; default 8080; 0 = any free port, printed on the ready line)' },
    'api-key': {
      type: 'string',
      multiple: true,
      description: 'accept this API key (repeatable; also ZG_API_KEYS, comma-separated)',
    },
    'allow-private-urls': {
      type: 'boolean',
      description: 'allow providers on private or loopback addresses (local networks only)',
    },
    'admin-key': {
      type: 'string',
      description: 'turn on the admin API (/admin/*) with this key, distinct from the API keys (ZG_ADMIN_KEY)',
    },
    'model-alias': {
      type: 'string',
      multiple: true,
      description:
        'serve a model under another name, alias=target (repeatable; also ZG_MODEL_ALIASES, comma-separated)',
    },
    'cors-origin': {
      type: 'string',
      multiple: true,
      description:
        'let browser apps on this origin call the gateway: *, https://app.example or http://localhost:* (repeatable; also ZG_CORS_ORIGINS)',
    },
    'no-auto-fund': { type: 'boolean', description: 'never open or refill provider sub-accounts' },
    'initial-deposit': {
      type: 'string',
      description: 'first deposit into a new provider sub-account, in 0G (default 2)',
    },
    'escrow-reserve': {
      type: 'string',
      description:
        "the provider's locked reserve the funding policy keeps in each sub-account, in 0G (default 1, as on mainnet)",
    },
    'dispute-limit': {
      type: 'string',
      description: 'disputed responses after which a provider is no longer funded nor routed to (default 3)',
    },
    'reconcile-from-block': {
      type: 'string',
      description:
        "first block of the wallet's settlements to reconcile on the first run (default: the head, from the balances there)",
    },
    'reconcile-interval': { type: 'string', description: 'seconds between reconciliation rounds (default 60)' },
    'reconcile-tolerance': {
      type: 'string',
      description: 'what a provider may charge above the ledger before it is flagged, in 0G (default 0)',
    },
    'no-reconcile': { type: 'boolean', description: "do not reconcile providers' charges with the ledger" },
    'connect-timeout': {
      type: 'string',
      description: 'seconds to connect to a provider (ZG_CONNECT_TIMEOUT; default 10)',
    },
    'first-byte-timeout': {
      type: 'string',
      description:
        "seconds for a stream's first byte before the next provider is tried (ZG_FIRST_BYTE_TIMEOUT; default 30)",
    },
    timeout: {
      type: 'string',
      description:
        'seconds a call may take until its first byte reaches the client, failovers included (ZG_TIMEOUT; default 300)',
    },
    'idle-timeout': {
      type: 'string',
      description:
        "seconds of a provider's silence that end a stream with an error event (ZG_IDLE_TIMEOUT; default 60)",
    },
    'breaker-threshold': {
      type: 'string',
      description: "failures in a row that open a provider's circuit (default 3)",
    },
    'breaker-cooldown': {
      type: 'string',
      description: 'seconds an open circuit waits before a probe may close it (default 30)',
    },
    'probe-interval': {
      type: 'string',
      description: 'seconds between active probes of open, failing and idle providers (default 30)',
    },
    'fine-tuning-poll': {
      type: 'string',
      description: 'seconds between looks at a running fine-tuning job (its provider and the chain; default 5)',
    },
    'fine-tuning-file-limit': {
      type: 'string',
      description: "largest fine-tuning training file, in bytes (default 104857600, 0G providers' limit)",
    },
    'no-fine-tuning': { type: 'boolean', description: 'turn the fine-tuning API (/v1/files, /v1/fine_tuning/*) off' },
    'pccs-url': {
      type: 'string',
      description: "where attestation gets Intel's collateral: Intel PCS (default) or a PCCS serving its v4 API",
    },
    'measurement-policy': {
      type: 'string',
      description: 'L3 allowlists (JSON: mrTd, rtmr0-2, composeHashes, osImageHashes, keyProviders)',
    },
    ...observabilityOptions,
  },
  async run(values) {
    // Flags first: a typo is reported before any chain or wallet is touched.
    const funding = fundingOptions(values)
    const reconciliation = reconciliationOptions(values)
    const attestation = await attestationOptions(values)
    const timeouts = timeoutOptions(values)
    const health = healthOptions(values)
    const fineTuning = fineTuningOptions(values)
    const logger = loggerFrom(values, 'gateway')
    const network = await resolveNetwork(values)
    const wallet = await resolveWallet(values, network)
    if (!wallet) throw new UsageError('The gateway pays providers from a wallet: set ZG_PRIVATE_KEY or pass --key-file')
    const apiKeys = listOption(values['api-key'], process.env.ZG_API_KEYS)
    let modelAliases: ModelAliases
    let corsOrigins: string[]
    try {
      modelAliases = ModelAliases.parse(listOption(values['model-alias'], process.env.ZG_MODEL_ALIASES))
      corsOrigins = listOption(values['cors-origin'], process.env.ZG_CORS_ORIGINS)
      corsMatcher(corsOrigins)
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
    const adminKey = (values['admin-key'] as string | undefined) ?? process.env.ZG_ADMIN_KEY
    if (adminKey && apiKeys.includes(adminKey))
      throw new UsageError('The admin key must differ from every API key: an inference key must not administer.')
    const dataDir = dataDirOf(values)
    const stopSignal = untilSignal()
    const gateway = await startGateway({
      network,
      wallet,
      dataDir: join(dataDir, 'gateway'),
      store: storeOf(values),
      host: (values.host as string | undefined) ?? '127.0.0.1',
      port: Number((values.port as string | undefined) ?? process.env.ZG_PORT ?? 8080),
      apiKeys,
      adminKey,
      modelAliases: modelAliases.list().flatMap(({ alias, targets }) => targets.map((t) => [alias, t] as const)),
      corsOrigins,
      allowPrivateUrls: Boolean(values['allow-private-urls']) || network.name === 'devnet',
      autoFund: !values['no-auto-fund'],
      initialDeposit:
        values['initial-deposit'] !== undefined ? parse0G(values['initial-deposit'] as string) : undefined,
      funding,
      reconciliation,
      attestation,
      timeouts,
      health,
      // The dev key is accepted only by `zg-gateway dev`, never here.
      logger,
      metricsPublic: Boolean(values['metrics-public']),
      fineTuning,
    })
    const base = `${gateway.url}/v1`
    const providers = gateway.core.catalog.entries().length
    if (values.json)
      printJson({ ready: base, network: network.name, chainId: network.chain.id, wallet: wallet.address, providers })
    else {
      console.log(
        `network ${network.name} (chain ${network.chain.id}), wallet ${wallet.address}, ${providers} providers`,
      )
      console.log(`store: ${gateway.stores.kind} (${gateway.stores.where})`)
      // Keys come from the flags and from the store (`zg-gateway keys create`); only with neither can nobody call.
      const stored = (await gateway.keys.list()).filter((k) => k.revokedAt === null).length
      if (!apiKeys.length && !stored)
        console.log('no API keys configured yet: create one with zg-gateway keys create --name <name>')
      else console.log(`API keys: ${apiKeys.length} from the configuration, ${stored} in the key store`)
      console.log(`ready: ${base}`)
    }
    await stopSignal
    await gateway.close()
    return 0
  },
}

/** A repeatable flag's values, then a comma-separated environment variable's. */
function listOption(flag: unknown, env: string | undefined): string[] {
  return [
    ...((flag as string[] | undefined) ?? []),
    ...(env ?? '')
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ]
}
