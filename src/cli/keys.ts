import { join } from 'node:path'
import { format0G } from '../chain/units.ts'
import type { ApiKeyInfo, KeySettings, KeyStore } from '../gateway/http/api-keys.ts'
import { parseKeySettings } from '../gateway/http/key-settings.ts'
import { openKeyStore } from '../gateway/stores.ts'
import { type Command, type CommandGroup, type Options, requireString, UsageError, type Values } from './command.ts'
import { dataDirOf } from './network-options.ts'
import { printJson, table } from './output.ts'
import { storeOf, storeOption } from './store-option.ts'

const options: Options = {
  'data-dir': { type: 'string', description: 'state directory (ZG_DATA_DIR; default .zg)' },
  ...storeOption,
}

/** The settings flags of create and update; "none" clears a setting on update. */
const settingOptions: Options = {
  name: { type: 'string', description: 'a name for the key' },
  metadata: { type: 'string', description: 'a JSON object kept with the key' },
  'expires-at': { type: 'string', description: 'expiry, ISO 8601 (2027-01-31T00:00:00Z), or none' },
  models: { type: 'string', description: 'allowed models, comma-separated (as clients name them); none: all' },
  'min-verification': {
    type: 'string',
    description:
      'none, L0, L1 (signed by a signer acknowledged on-chain), L2 (attested TDX quote) or L3 (and workload)',
  },
  'tee-only': { type: 'string', description: 'true: only providers that run the model inside a TEE; false: any' },
  routing: {
    type: 'string',
    description:
      'routing defaults as JSON: provider, sort (price|latency|throughput), allow_fallbacks, max_price_prompt, max_price_completion',
  },
  'first-byte-timeout': { type: 'string', description: "seconds for a stream's first byte (over the gateway's)" },
  timeout: { type: 'string', description: "seconds until the first byte reaches the client (over the gateway's)" },
  'idle-timeout': { type: 'string', description: "seconds of silence that end a stream (over the gateway's)" },
  budget: { type: 'string', description: 'budget in 0G (e.g. 0.5), or none' },
  'budget-period': { type: 'string', description: 'daily, weekly or monthly (UTC), or none: never resets' },
  rpm: { type: 'string', description: 'requests per minute, or none' },
  tpm: { type: 'string', description: 'tokens per minute, or none' },
}

/** The gateway's key store: the file or the database `serve` reads, so changes apply to a running gateway. */
async function withStore<T>(values: Values, fn: (store: KeyStore) => T | Promise<T>): Promise<T> {
  const { keys, close } = await openKeyStore({ dataDir: join(dataDirOf(values), 'gateway'), store: storeOf(values) })
  try {
    return await fn(keys)
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message)
    throw err
  } finally {
    await close()
  }
}

/** The flags as the admin API's JSON, parsed by the same function. */
function settingsOf(values: Values): KeySettings {
  const input: Record<string, unknown> = {}
  const text = (flag: string) => (typeof values[flag] === 'string' ? (values[flag] as string) : undefined)
  const none = (v: string) => v === 'none'
  const put = (flag: string, key: string, map: (v: string) => unknown) => {
    const v = text(flag)
    if (v !== undefined) input[key] = none(v) ? null : map(v)
  }
  put('name', 'name', (v) => v)
  put('metadata', 'metadata', (v) => {
    try {
      return JSON.parse(v)
    } catch {
      throw new UsageError('--metadata must be a JSON object')
    }
  })
  put('expires-at', 'expires_at', (v) => v)
  put('models', 'allowed_models', (v) =>
    v
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean),
  )
  put('min-verification', 'min_verification', (v) => v)
  const timeouts: Record<string, number> = {}
  for (const [flag, key] of [
    ['first-byte-timeout', 'first_byte_ms'],
    ['timeout', 'total_ms'],
    ['idle-timeout', 'idle_ms'],
  ] as const) {
    const v = text(flag)
    if (v === undefined) continue
    const seconds = Number(v)
    if (!(seconds > 0) || !Number.isFinite(seconds))
      throw new UsageError(`--${flag} must be a positive number of seconds`)
    timeouts[key] = Math.round(seconds * 1000)
  }
  if (Object.keys(timeouts).length) input.timeouts = timeouts
  put('routing', 'routing', (v) => {
    try {
      return JSON.parse(v)
    } catch {
      throw new UsageError('--routing must be a JSON object')
    }
  })
  put('tee-only', 'tee_only', (v) => {
    if (v !== 'true' && v !== 'false') throw new UsageError('--tee-only must be true or false')
    return v === 'true'
  })
  put('budget', 'budget', (v) => v)
  put('budget-period', 'budget_period', (v) => v)
  for (const flag of ['rpm', 'tpm']) {
    put(flag, flag, (v) => {
      const n = Number(v)
      if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${flag} must be a positive integer`)
      return n
    })
  }
  try {
    return parseKeySettings(input)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

function describe(k: ApiKeyInfo): string {
  const rows: [string, string][] = [
    ['id', k.id],
    ['name', k.name],
    ['prefix', `${k.prefix}…`],
    ['created', k.createdAt],
    ['last used', k.lastUsedAt ?? '-'],
    ['revoked', k.revokedAt ?? '-'],
    ['expires', k.expiresAt ?? '-'],
    ['models', k.allowedModels.length ? k.allowedModels.join(', ') : 'all'],
    ['min verification', k.minVerification],
    ['TEE only', k.teeOnly ? 'yes' : 'no'],
    ['routing', k.routing ? JSON.stringify(k.routing) : "the gateway's"],
    [
      'timeouts',
      k.timeouts
        ? Object.entries(k.timeouts)
            .map(([name, ms]) => `${name.replace(/Ms$/, '')} ${ms / 1000} s`)
            .join(', ')
        : "the gateway's",
    ],
    [
      'budget',
      k.budget === null ? 'unlimited' : `${format0G(BigInt(k.budget))} 0G${k.budgetPeriod ? ` ${k.budgetPeriod}` : ''}`,
    ],
    ['spent', `${format0G(BigInt(k.spent))} 0G (held for calls in flight: ${format0G(BigInt(k.reserved))} 0G)`],
    ['rpm', k.rpm === null ? 'unlimited' : String(k.rpm)],
    ['tpm', k.tpm === null ? 'unlimited' : String(k.tpm)],
    ['metadata', JSON.stringify(k.metadata)],
  ]
  return table(rows)
}

const idOf = (positionals: string[], what: string) => {
  const id = positionals[0]
  if (!id) throw new UsageError(`name the key id to ${what}`)
  return id
}

const create: Command = {
  summary: 'Create an API key (shown once; stored only as a hash), with optional budget, limits and models',
  options: { ...options, ...settingOptions, name: { type: 'string', description: 'a name for the key (required)' } },
  async run(values) {
    const name = requireString(values, 'name')
    const settings = settingsOf(values)
    const key = await withStore(values, async (s) => {
      const created = await s.create(name, settings)
      return { ...(await s.get(created.id))!, key: created.key }
    })
    if (values.json) printJson(key)
    else console.log(`${key.key}\n(id ${key.id}; store it now: it cannot be shown again)`)
    return 0
  },
}

const list: Command = {
  summary: 'List API keys (never the keys themselves)',
  options,
  async run(values) {
    const keys = await withStore(values, (s) => s.list())
    if (values.json) printJson(keys)
    else if (!keys.length) console.log('No API keys.')
    else
      console.log(
        table([
          ['id', 'name', 'prefix', 'created', 'last used', 'revoked', 'budget (0G)', 'spent (0G)'],
          ...keys.map((k) => [
            k.id,
            k.name,
            `${k.prefix}…`,
            k.createdAt,
            k.lastUsedAt ?? '-',
            k.revokedAt ?? '-',
            k.budget === null ? '-' : format0G(BigInt(k.budget)),
            format0G(BigInt(k.spent)),
          ]),
        ]),
      )
    return 0
  },
}

/** One key as `show` and `update` print it, or the error for an id that names none. */
function printKey(values: Values, id: string, key: ApiKeyInfo | undefined): number {
  if (!key) throw new UsageError(`no key with id ${id}`)
  if (values.json) printJson(key)
  else console.log(describe(key))
  return 0
}

const show: Command = {
  summary: 'Show one API key: its policy and spend',
  args: '<id>',
  options,
  async run(values, positionals) {
    const id = idOf(positionals, 'show')
    return printKey(values, id, await withStore(values, (s) => s.get(id)))
  },
}

const update: Command = {
  summary: 'Change an API key’s name, metadata, expiry, models, verification level, budget or limits',
  args: '<id>',
  options: { ...options, ...settingOptions },
  async run(values, positionals) {
    const id = idOf(positionals, 'update')
    const settings = settingsOf(values)
    return printKey(
      values,
      id,
      await withStore(values, async (s) => ((await s.get(id)) ? s.update(id, settings) : undefined)),
    )
  },
}

const rotate: Command = {
  summary: 'Issue a new secret for a key (same id, budget, limits and spend); the old secret stops working',
  args: '<id>',
  options,
  async run(values, positionals) {
    const id = idOf(positionals, 'rotate')
    const key = await withStore(values, async (s) => {
      const rotated = await s.rotate(id)
      return rotated && { ...(await s.get(id))!, key: rotated.key }
    })
    if (!key) throw new UsageError(`no active key with id ${id}`)
    if (values.json) printJson(key)
    else console.log(`${key.key}\n(id ${key.id}; the old secret no longer works; store this one now)`)
    return 0
  },
}

const revoke: Command = {
  summary: 'Revoke an API key by id (a running gateway stops accepting it within seconds)',
  args: '<id>',
  options,
  async run(values, positionals) {
    const id = idOf(positionals, 'revoke')
    const done = await withStore(values, (s) => s.revoke(id))
    if (!done) throw new UsageError(`no active key with id ${id}`)
    if (values.json) printJson({ revoked: id })
    else console.log(`Revoked ${id}`)
    return 0
  },
}

export const keysGroup: CommandGroup = {
  summary: 'Manage the gateway’s API keys',
  commands: { create, list, show, update, rotate, revoke },
}
