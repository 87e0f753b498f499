import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ApiKeyStore } from '../gateway/http/api-keys.ts'
import { type Command, type CommandGroup, type Options, requireString, UsageError, type Values } from './command.ts'
import { dataDirOf } from './network-options.ts'
import { printJson, table } from './output.ts'

const options: Options = { 'data-dir': { type: 'string', description: 'state directory (ZG_DATA_DIR; default .zg)' } }

/** The gateway's key store: the same file `serve` and `dev` read, so changes apply to a running gateway. */
function withStore<T>(values: Values, fn: (store: ApiKeyStore) => T): T {
  const dir = join(dataDirOf(values), 'gateway')
  mkdirSync(dir, { recursive: true })
  const store = new ApiKeyStore(join(dir, 'gateway.sqlite'))
  try {
    return fn(store)
  } finally {
    store.close()
  }
}

const create: Command = {
  summary: 'Create an API key (shown once; stored only as a hash)',
  options: { ...options, name: { type: 'string', description: 'a name for the key (required)' } },
  async run(values) {
    const name = requireString(values, 'name')
    const key = withStore(values, (s) => s.create(name))
    if (values.json) printJson(key)
    else console.log(`${key.key}\n(id ${key.id}; store it now: it cannot be shown again)`)
    return 0
  },
}

const list: Command = {
  summary: 'List API keys (never the keys themselves)',
  options,
  async run(values) {
    const keys = withStore(values, (s) => s.list())
    if (values.json) printJson(keys)
    else if (!keys.length) console.log('No API keys.')
    else
      console.log(
        table([
          ['id', 'name', 'prefix', 'created', 'last used', 'revoked'],
          ...keys.map((k) => [k.id, k.name, `${k.prefix}…`, k.createdAt, k.lastUsedAt ?? '-', k.revokedAt ?? '-']),
        ]),
      )
    return 0
  },
}

const revoke: Command = {
  summary: 'Revoke an API key by id (a running gateway stops accepting it within seconds)',
  args: '<id>',
  options,
  async run(values, positionals) {
    const id = positionals[0]
    if (!id) throw new UsageError('name the key id to revoke')
    const done = withStore(values, (s) => s.revoke(id))
    if (!done) throw new UsageError(`no active key with id ${id}`)
    if (values.json) printJson({ revoked: id })
    else console.log(`Revoked ${id}`)
    return 0
  },
}

export const keysGroup: CommandGroup = { summary: 'Manage the gateway’s API keys', commands: { create, list, revoke } }
