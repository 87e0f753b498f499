/**
 * The gateway alone in its own process, so that its RSS and CPU profile are its own. Forked by run.ts with an IPC
 * channel: it reads the devnet from `<dataDir>/devnet.json`, starts the gateway as the dev stack does (dev wallet,
 * dev API key, private URLs allowed, every production feature on), sends `{ready, url, pid}`, and stops on
 * SIGTERM, on a `{stop: true}` message, or when the parent goes away. `{traceStart}` / `{traceStop}` mark its HTTP
 * traffic for the hop section (bench/hop-trace.mjs, loaded then), answered `{tracing}` and `{marks}`.
 *
 * Plain JavaScript, and it loads the package's bundle (`npm run build`, which run.ts runs first) and nothing else:
 * its memory is what `zg-gateway serve` from an installed package uses. (A TypeScript file here would load Node's
 * type stripper, some 18 MB, which an installed package never does.) `ZG_BENCH_FROM_SOURCE=1` loads the sources.
 * The messages are typed in run.ts (GatewayProcessConfig, GatewayProcessMessage).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'

const lib = await import(process.env.ZG_BENCH_FROM_SOURCE === '1' ? '../src/index.ts' : '../dist/index.js')

async function main(cfg) {
  const info = JSON.parse(readFileSync(join(cfg.dataDir, 'devnet.json'), 'utf8'))
  const network = lib.customNetwork({
    name: 'devnet',
    chainId: info.chainId,
    rpcUrl: info.rpcUrl,
    contracts: { ledger: info.contracts.ledger, inference: info.contracts.inference },
  })
  const wallet = await lib.loadWallet({ env: { ZG_PRIVATE_KEY: cfg.walletKey } })
  const gateway = await lib.createGateway({
    network,
    wallet,
    dataDir: join(cfg.dataDir, cfg.gatewayDir ?? 'gateway'),
    store: cfg.store,
    adminKey: cfg.adminKey,
    port: 0,
    devKey: cfg.devKey,
    allowPrivateUrls: true,
    // Log lines go to stderr, which run.ts keeps for its report when something fails.
    log: (line) => process.stderr.write(`${line}\n`),
  })
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await gateway.close().catch(() => undefined)
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('disconnect', stop)
  let session
  let hopTrace
  process.on('message', async (m) => {
    if (m.stop) void stop()
    else if (m.memory) process.send?.({ memory: process.memoryUsage() })
    else if (m.traceStart) {
      hopTrace ??= await import('./hop-trace.mjs')
      hopTrace.startHopTrace()
      process.send?.({ tracing: true })
    } else if (m.traceStop && hopTrace) process.send?.({ marks: hopTrace.stopHopTrace() })
    else if (m.profileStart) {
      // The V8 CPU profiler (what --cpu-prof uses), over exactly the window the orchestrator asks for.
      session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: 200 })
      await session.post('Profiler.start')
      process.send?.({ profiling: true })
    } else if (m.profileStop && session) {
      const { profile } = await session.post('Profiler.stop')
      session.disconnect()
      session = undefined
      writeFileSync(m.profileStop, JSON.stringify(profile))
      process.send?.({ profileWritten: m.profileStop })
    }
  })
  process.send?.({ ready: true, url: gateway.url, pid: process.pid })
}

process.once('message', (cfg) => {
  main(cfg).catch((err) => {
    process.send?.({ error: err?.stack ?? String(err) }, () => process.exit(1))
  })
})
if (!process.send) {
  console.error('bench/gateway-process.mjs is started by bench/run.ts (fork, with an IPC channel)')
  process.exit(64)
}
