/**
 * The gateway alone in its own process, so that its RSS and CPU profile are its own. Forked by run.ts with an IPC
 * channel: it reads the devnet from `<dataDir>/devnet.json`, starts the gateway as the dev stack does (dev wallet,
 * dev API key, private URLs allowed, every production feature on), sends `{ready, url, pid}`, and stops on
 * SIGTERM, on a `{stop: true}` message, or when the parent goes away. It imports only what the gateway imports (no
 * dev stack, no deployment artifacts), so its memory is what `zg-gateway serve` would use.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import type { Address, Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { customNetwork } from '../src/chain/networks.ts'
import { startGateway } from '../src/gateway/server.ts'

export type GatewayProcessConfig = {
  dataDir: string
  /** The dev wallet's key (anvil account 1: a well-known test key). */
  walletKey: Hex
  devKey: string
}

export type GatewayProcessMessage =
  | { ready: true; url: string; pid: number }
  | { memory: NodeJS.MemoryUsage }
  | { profiling: true }
  | { profileWritten: string }
  | { error: string }

async function main(cfg: GatewayProcessConfig) {
  const info = JSON.parse(readFileSync(join(cfg.dataDir, 'devnet.json'), 'utf8')) as {
    chainId: number
    rpcUrl: string
    contracts: { ledger: Address; inference: Address }
  }
  const network = customNetwork({
    name: 'devnet',
    chainId: info.chainId,
    rpcUrl: info.rpcUrl,
    contracts: { ledger: info.contracts.ledger, inference: info.contracts.inference },
  })
  const lines: string[] = []
  const gateway = await startGateway({
    network,
    wallet: privateKeyToAccount(cfg.walletKey),
    dataDir: join(cfg.dataDir, 'gateway'),
    port: 0,
    devKey: cfg.devKey,
    allowPrivateUrls: true,
    // Log lines go to stderr, which run.ts keeps for its report when something fails.
    log: (line) => {
      lines.push(line)
      process.stderr.write(`${line}\n`)
    },
  })
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await gateway.close().catch(() => undefined)
    // A normal exit, so that --cpu-prof writes its profile.
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('disconnect', stop)
  let session: Session | undefined
  process.on(
    'message',
    async (m: { stop?: boolean; memory?: boolean; profileStart?: boolean; profileStop?: string }) => {
      if (m.stop) void stop()
      else if (m.memory) process.send?.({ memory: process.memoryUsage() } satisfies GatewayProcessMessage)
      else if (m.profileStart) {
        // The V8 CPU profiler (what --cpu-prof uses), over exactly the window the orchestrator asks for.
        session = new Session()
        session.connect()
        await session.post('Profiler.enable')
        await session.post('Profiler.setSamplingInterval', { interval: 200 })
        await session.post('Profiler.start')
        process.send?.({ profiling: true } satisfies GatewayProcessMessage)
      } else if (m.profileStop && session) {
        const { profile } = await session.post('Profiler.stop')
        session.disconnect()
        session = undefined
        writeFileSync(m.profileStop, JSON.stringify(profile))
        process.send?.({ profileWritten: m.profileStop } satisfies GatewayProcessMessage)
      }
    },
  )
  process.send?.({ ready: true, url: gateway.url, pid: process.pid } satisfies GatewayProcessMessage)
}

process.once('message', (cfg: GatewayProcessConfig) => {
  main(cfg).catch((err) => {
    process.send?.({ error: (err as Error).stack ?? String(err) } satisfies GatewayProcessMessage, () =>
      process.exit(1),
    )
  })
})
if (!process.send) {
  console.error('bench/gateway-process.ts is started by bench/run.ts (fork, with an IPC channel)')
  process.exit(64)
}
