import { startDevStack } from '../devnet/dev-stack.ts'
import { type Command, UsageError } from './command.ts'
import { loggerFrom, observabilityOptions } from './log-options.ts'
import { dataDirOf } from './network-options.ts'
import { printJson, table } from './output.ts'
import { untilSignal } from './signals.ts'
import { storeOf, storeOption } from './store-option.ts'

export const devCommand: Command = {
  summary:
    'Run the whole marketplace locally: anvil with the real 0G contracts, provider nodes, a funded wallet, and the gateway',
  options: {
    'data-dir': { type: 'string', description: 'state directory (ZG_DATA_DIR; default .zg)' },
    port: {
      type: 'string',
      description: 'gateway port on 127.0.0.1 (ZG_PORT; default 8080; 0 = any free port, printed on the ready line)',
    },
    'chain-port': {
      type: 'string',
      description: 'anvil RPC port on 127.0.0.1 (ZG_CHAIN_PORT; default 8545; 0 = any free port)',
    },
    'lock-time': { type: 'string', description: 'refund lock time in seconds for a new devnet (default 86400)' },
    'token-delay': { type: 'string', description: 'dev model streaming pace, ms per token (default 10)' },
    instances: {
      type: 'string',
      description:
        'gateway instances behind a round-robin front on --port (default 1); several share one Postgres (--store, or a throwaway one)',
    },
    ...storeOption,
    'log-level': observabilityOptions['log-level']!,
  },
  async run(values) {
    const dataDir = dataDirOf(values)
    const instances = Number((values.instances as string | undefined) ?? 1)
    if (!Number.isSafeInteger(instances) || instances < 1 || instances > 16)
      throw new UsageError('--instances takes a whole number from 1 to 16')
    const logger = loggerFrom(values, 'gateway')
    const started = performance.now()
    // Listen before anything starts: a Ctrl-C during start-up, or right after the ready line, still stops cleanly.
    const stopSignal = untilSignal({ watchParent: true })
    const text = !values.json
    const stack = await startDevStack({
      dataDir,
      port: Number((values.port as string | undefined) ?? process.env.ZG_PORT ?? 8080),
      chainPort: Number((values['chain-port'] as string | undefined) ?? process.env.ZG_CHAIN_PORT ?? 8545),
      lockTime: values['lock-time'] !== undefined ? BigInt(values['lock-time'] as string) : undefined,
      tokenDelayMs: values['token-delay'] !== undefined ? Number(values['token-delay']) : undefined,
      instances,
      store: storeOf(values),
      devKey: process.env.ZG_DEV_API_KEY,
      adminKey: process.env.ZG_DEV_ADMIN_KEY,
      log: (line) => text && console.log(line),
      logger,
    })
    const { info } = stack.devnet
    const baseUrl = `${stack.url}/v1`
    const ms = Math.round(performance.now() - started)
    if (values.json) {
      printJson({
        ready: baseUrl,
        apiKey: stack.devKey,
        adminKey: stack.adminKey,
        dataDir,
        chainId: info.chainId,
        rpcUrl: info.rpcUrl,
        contracts: info.contracts,
        wallet: stack.gateway.core.tokens.address,
        providers: stack.nodes.map((n) => ({
          name: n.spec.name,
          address: n.address,
          url: n.node.url,
          model: n.spec.model,
        })),
        instances: [stack.gateway.url, ...stack.instances.map((i) => i.url)],
        store: stack.store.kind,
        startupMs: ms,
      })
    } else {
      console.log(`  LedgerManager     ${info.contracts.ledger}`)
      console.log(`  InferenceServing  ${info.contracts.inference}`)
      console.log(`  dev wallet        ${stack.gateway.core.tokens.address}`)
      console.log(
        table([
          ['provider', 'address', 'model', 'verifiability', 'url'],
          ...stack.nodes.map((n) => [n.spec.name, n.address, n.spec.model, n.spec.verifiability, n.node.url]),
        ]),
      )
      console.log(`API key: ${stack.devKey}   admin key: ${stack.adminKey}   (dev mode only)`)
      console.log(`ready: ${baseUrl} (${ms} ms). Ctrl-C stops everything.`)
    }
    const signal = await stopSignal
    if (text) console.log(`\n${signal}: stopping`)
    await stack.stop()
    return 0
  },
}
