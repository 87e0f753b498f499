import { spawn } from 'node:child_process'

/**
 * Runs a gateway CLI process (`node <argv…>`) until it prints its `ready:` line; resolves with the base URL it
 * printed, everything it wrote so far, and a stop() that sends SIGTERM and waits for the exit.
 */
export async function spawnUntilReady(
  argv: string[],
  env: Record<string, string>,
): Promise<{ base: string; output(): string; stop(): Promise<void> }> {
  const proc = spawn(process.execPath, argv, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((r) => proc.once('exit', r))
    proc.kill('SIGTERM')
    await exited
  }
  try {
    const base = await new Promise<string>((resolve, reject) => {
      proc.stdout.on('data', (d) => {
        out += d
        const m = out.match(/^ready: (\S+)/m)
        if (m) resolve(m[1]!)
      })
      proc.stderr.on('data', (d) => {
        out += d
      })
      proc.once('exit', (code) => reject(new Error(`the gateway exited ${code}: ${out}`)))
    })
    return { base, output: () => out, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** `serve` on the devnet's RPC URL and contracts, on a free port, with one API key and its own data dir. */
export function serveArgs(
  info: { rpcUrl: string; contracts: { ledger: string; inference: string } },
  opts: { apiKey: string; dataDir: string },
): string[] {
  return [
    'serve',
    '--network',
    info.rpcUrl,
    '--ledger-ca',
    info.contracts.ledger,
    '--inference-ca',
    info.contracts.inference,
    '--port',
    '0',
    '--allow-private-urls',
    '--api-key',
    opts.apiKey,
    '--data-dir',
    opts.dataDir,
  ]
}
