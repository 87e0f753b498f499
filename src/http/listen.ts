import { createServer } from 'node:http'
import { getRequestListener, type ServerType } from '@hono/node-server'
import { readJsonBodyEarly } from './early-body.ts'

/**
 * Serves a fetch handler (a Hono app's) on a Node HTTP server, the way the gateway and the provider node both do:
 * a call's JSON body is read as soon as its headers are parsed, not when the route asks ({@link readJsonBodyEarly}).
 * Resolves once listening.
 */
export async function listenApp(
  fetch: (request: Request, env: object) => Response | Promise<Response>,
  options: { hostname: string; port: number; what?: string },
): Promise<ServerType> {
  const listener = getRequestListener(fetch, { hostname: options.hostname })
  const server: ServerType = createServer((req, res) => {
    readJsonBodyEarly(req)
    listener(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE' ? new PortInUseError(options.hostname, options.port, options.what ?? 'the') : err,
      ),
    )
    server.listen(options.port, options.hostname, () => {
      server.removeAllListeners('error')
      resolve()
    })
  })
  return server
}

/** A port this process was asked to listen on is taken. */
export class PortInUseError extends Error {
  override name = 'PortInUseError'
  constructor(hostname: string, port: number, what: string) {
    super(
      `${what} port ${port} on ${hostname} is already in use (another zg-gateway?): stop that, or pick another port (0 = any free port)`,
    )
  }
}

/**
 * Fails with a PortInUseError if `port` cannot be listened on now: checked before work that would be wasted if the
 * listen came to fail at the end (the dev stack deploys a chain before its gateway listens). Port 0 always passes.
 */
export async function ensurePortFree(hostname: string, port: number, what: string): Promise<void> {
  if (port === 0) return
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(hostname, port, what) : err),
    )
    probe.listen(port, hostname, () => probe.close(() => resolve()))
  })
}
