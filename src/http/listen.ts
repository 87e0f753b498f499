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
  options: { hostname: string; port: number },
): Promise<ServerType> {
  const listener = getRequestListener(fetch, { hostname: options.hostname })
  const server: ServerType = createServer((req, res) => {
    readJsonBodyEarly(req)
    listener(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.hostname, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}
