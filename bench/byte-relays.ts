/**
 * The bench's byte relays (bench/byte-relay.c and bench/byte-relay.mjs): reference processes that pass a connection's
 * bytes both ways without reading them, to measure what one more process on a loopback path costs before any HTTP.
 */
import { execFileSync, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))

/** A relay in a process of its own, listening on 127.0.0.1:`port`, in front of one upstream port. */
export type ByteRelay = { name: string; pid: number; port: number; stop(): void }

/** The command line of the Node relay (the upstream port goes last). */
export const NODE_BYTE_RELAY = [process.execPath, join(HERE, 'byte-relay.mjs')]

/** Starts `command… <upstream port>`, which prints the port it listens on first. */
export function startByteRelay(name: string, command: string[], upstream: number): Promise<ByteRelay> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = command
    const child = spawn(file!, [...args, String(upstream)], { stdio: ['ignore', 'pipe', 'inherit'] })
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before listening`)))
    child.stdout!.once('data', (d) => {
      const port = Number.parseInt(String(d), 10)
      if (!Number.isInteger(port)) return reject(new Error(`${name} printed ${String(d).trim()}, not a port`))
      resolve({ name, pid: child.pid!, port, stop: () => child.kill('SIGTERM') })
    })
  })
}

/** Compiles bench/byte-relay.c into `dir` with the system's C compiler (`cc`), or says why it could not. */
export function compileByteRelay(dir: string): { path: string } | { error: string } {
  const path = join(dir, 'byte-relay')
  try {
    execFileSync('cc', ['-O2', '-o', path, join(HERE, 'byte-relay.c')], { stdio: ['ignore', 'ignore', 'pipe'] })
    return { path }
  } catch (err) {
    return { error: `cc: ${(err as Error).message.split('\n')[0]}` }
  }
}
