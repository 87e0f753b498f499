import { type ChildProcess, spawn } from 'node:child_process'
import { anvilPrivateKey } from '../../src/devnet/anvil.ts'
import type { Marketplace } from './marketplace.ts'

/** The flags that point a CLI command at the marketplace's chain and contracts. */
export function chainArgsOf(m: Pick<Marketplace, 'anvil' | 'contracts'>): string[] {
  return ['--network', m.anvil.rpcUrl, '--ledger-ca', m.contracts.ledger, '--inference-ca', m.contracts.inference]
}

export type ProviderProcess = { proc: ChildProcess; url: string; output(): string }

/**
 * `zg-gateway provider serve` as its own process, as an operator runs it: on the marketplace's chain, with the dev
 * signer, on a free port, paid to anvil account `account` (default 2); resolves on its ready line.
 */
export function spawnProviderNode(
  m: Pick<Marketplace, 'anvil' | 'contracts'>,
  opts: {
    backends: string[]
    dataDir: string
    port?: number
    /** Seconds between settlement runs; 0 (the default here) settles only on demand. */
    settleInterval?: number
    args?: string[]
    env?: Record<string, string>
    account?: number
  },
): Promise<ProviderProcess> {
  const proc = spawn(
    process.execPath,
    [
      'bin/zg-gateway.js',
      'provider',
      'serve',
      ...opts.backends.flatMap((url) => ['--backend', url]),
      '--insecure-dev-signer',
      '--port',
      String(opts.port ?? 0),
      '--settle-interval',
      String(opts.settleInterval ?? 0),
      '--data-dir',
      opts.dataDir,
      ...chainArgsOf(m),
      ...(opts.args ?? []),
    ],
    {
      env: { PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(opts.account ?? 2), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  return new Promise((resolve, reject) => {
    let ready = false
    const onData = (d: Buffer) => {
      if (out.length < 2_000_000) out += d
      const line = /^ready: (\S+)/m.exec(out)
      if (line && !ready) {
        ready = true
        resolve({ proc, url: line[1]!, output: () => out })
      }
    }
    proc.stdout!.on('data', onData)
    proc.stderr!.on('data', onData)
    proc.once('exit', (code, signal) => reject(new Error(`provider node exited ${code ?? signal}:\n${out}`)))
  })
}
