import { startDevnet } from '../devnet/devnet.ts'
import type { Command } from './command.ts'
import { dataDirOf } from './network-options.ts'
import { printJson } from './output.ts'

/** Waits for Ctrl-C or SIGTERM, once. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      resolve(signal)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}

export const devCommand: Command = {
  summary: 'Run the local 0G marketplace: anvil with the real 0G contracts (state kept in --data-dir)',
  options: {
    'data-dir': { type: 'string', description: 'state directory (ZG_DATA_DIR; default .zg)' },
    'chain-port': { type: 'string', description: 'anvil RPC port on 127.0.0.1 (ZG_CHAIN_PORT; default 8545)' },
    'lock-time': { type: 'string', description: 'refund lock time in seconds for a new devnet (default 86400)' },
  },
  async run(values) {
    const dataDir = dataDirOf(values)
    const port = Number((values['chain-port'] as string | undefined) ?? process.env.ZG_CHAIN_PORT ?? 8545)
    const lockTime = values['lock-time'] !== undefined ? BigInt(values['lock-time'] as string) : undefined
    const started = Date.now()
    const devnet = await startDevnet({ dataDir, port, lockTime, log: (line) => !values.json && console.log(line) })
    const { info } = devnet
    if (values.json) {
      printJson({ ready: true, dataDir, reused: devnet.reused, ...info })
    } else {
      console.log(
        `${devnet.reused ? 'Reusing' : 'Deployed'} the 0G contracts on chain ${info.chainId} (${dataDir}/devnet.json)`,
      )
      console.log(`  LedgerManager     ${info.contracts.ledger}`)
      console.log(`  InferenceServing  ${info.contracts.inference}`)
      console.log(`  owner             ${info.owner}`)
      console.log(`ready: devnet RPC ${info.rpcUrl} (${Date.now() - started} ms). Ctrl-C stops it.`)
    }
    const signal = await untilSignal()
    if (!values.json) console.log(`\n${signal}: stopping`)
    await devnet.stop()
    return 0
  },
}
