import { type ChildProcess, spawn } from 'node:child_process'
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Hex } from 'viem'
import type { DevnetInfo } from './devnet.ts'

/** One `zg-gateway serve` process of several sharing a store. */
export type GatewayInstance = {
  url: string
  proc: ChildProcess
  /** What it printed so far (stdout and stderr). */
  output(): string
  /** SIGTERM, then waits for its exit (it finishes its calls and commits their records). */
  stop(): Promise<void>
}

const CLI = fileURLToPath(new URL('../../bin/zg-gateway.js', import.meta.url))

/**
 * Starts `zg-gateway serve` as its own process on the devnet `info` describes, paying from the wallet `walletKey`,
 * on a free loopback port; resolves once it prints its ready line. The key goes by environment, never argv (which
 * `ps` shows).
 */
export async function spawnGatewayInstance(options: {
  info: Pick<DevnetInfo, 'rpcUrl' | 'contracts'>
  walletKey: Hex
  dataDir: string
  store?: string
  adminKey?: string
  apiKeys?: string[]
  args?: string[]
  env?: Record<string, string>
}): Promise<GatewayInstance> {
  const argv = [
    CLI,
    'serve',
    '--network',
    options.info.rpcUrl,
    '--ledger-ca',
    options.info.contracts.ledger,
    '--inference-ca',
    options.info.contracts.inference,
    ...(options.info.contracts.fineTuning ? ['--fine-tuning-ca', options.info.contracts.fineTuning] : []),
    '--port',
    '0',
    '--allow-private-urls',
    '--data-dir',
    options.dataDir,
    ...(options.store ? ['--store', options.store] : []),
    ...(options.args ?? []),
  ]
  const proc = spawn(process.execPath, argv, {
    env: {
      PATH: process.env.PATH ?? '',
      ZG_PRIVATE_KEY: options.walletKey,
      ...(options.adminKey && { ZG_ADMIN_KEY: options.adminKey }),
      ...(options.apiKeys?.length && { ZG_API_KEYS: options.apiKeys.join(',') }),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
    await exited
  }
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (d: Buffer) => {
        if (out.length < 1_000_000) out += d
        const ready = /^ready: (\S+)\/v1$/m.exec(out)
        if (ready) resolve(ready[1]!)
      }
      proc.stdout!.on('data', onData)
      proc.stderr!.on('data', onData)
      proc.once('exit', (code, signal) =>
        reject(new Error(`a gateway instance exited (${code ?? signal}) before it was ready:\n${out.slice(-4000)}`)),
      )
    })
    return { url, proc, output: () => out, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** The dev front's cap on a request body it holds while it picks an instance (the gateway's own caps are lower). */
const MAX_BODY = 64 * 1024 * 1024

/**
 * A small round-robin front for the dev stack's instances, standing in for the load balancer of a deployment: each
 * request goes to the next instance; one that refuses the connection (stopped, killed) is passed over for the
 * next. Bodies are held whole before sending, so a request can go to another instance untouched.
 */
export async function startRoundRobin(options: {
  upstreams: () => readonly string[]
  port: number
  host?: string
}): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  let next = 0
  const server = createServer(async (req, res) => {
    let body: Buffer
    try {
      body = await readBody(req)
    } catch (err) {
      res.writeHead(413, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: (err as Error).message, type: 'invalid_request_error' } }))
      return
    }
    const upstreams = options.upstreams()
    for (let tried = 0; tried < upstreams.length; tried++) {
      const target = new URL(req.url ?? '/', upstreams[next++ % upstreams.length])
      const sent = await forward(target, req, body, res)
      if (sent) return
    }
    res.writeHead(502, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: { message: 'no gateway instance is reachable', type: 'api_error' } }))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new Error(`the request body passes ${MAX_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Sends the request to `target` and pipes the answer back; false when the instance could not be reached. */
function forward(target: URL, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const upstream = request(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host, 'content-length': body.length } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
        answer.once('end', () => resolve(true))
        answer.once('error', () => {
          res.destroy()
          resolve(true)
        })
      },
    )
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      // Refused: the instance never saw the request, so the next may take it. A connection cut after that may have
      // been served already; the client sees the cut rather than a second charge.
      if (!res.headersSent && err.code === 'ECONNREFUSED') resolve(false)
      else {
        res.destroy()
        resolve(true)
      }
    })
    res.once('close', () => upstream.destroy())
    upstream.end(body)
  })
}
