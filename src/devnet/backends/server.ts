import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { createDevBackendApp } from './app.ts'
import { killedByFault } from './faults.ts'
import type { DevBackendOptions } from './options.ts'

/** Live counters, updated as requests come and go. */
export type DevBackendStats = {
  /** Requests received. */
  requests: number
  /** Responses whose connection closed before they finished, other than by an injected fault: client aborts. */
  aborted: number
  /** Requests received and not yet finished or aborted. */
  inFlight: number
}

export type DevBackend = {
  /** e.g. http://127.0.0.1:PORT, without /v1. */
  url: string
  port: number
  stats: DevBackendStats
  close(): Promise<void>
}

/** Serves the dev backends on 127.0.0.1 (`port` 0, the default, picks a free one). */
export async function startDevBackend(opts: DevBackendOptions & { port?: number } = {}): Promise<DevBackend> {
  const { port = 0, ...options } = opts
  const app = createDevBackendApp(options)
  const stats: DevBackendStats = { requests: 0, aborted: 0, inFlight: 0 }
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => resolve(s as Server)) as Server
    s.once('error', reject)
  })
  // Counted at the socket, not in the app: that is where a client abort shows, whatever the handler was doing.
  server.on('request', (_req, res) => {
    stats.requests++
    stats.inFlight++
    res.once('close', () => {
      stats.inFlight--
      if (!res.writableFinished && !killedByFault(res)) stats.aborted++
    })
  })
  const { port: actual } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    stats,
    close: () =>
      new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        // Streams and hung requests would otherwise keep close() waiting.
        server.closeAllConnections()
      }),
  }
}
