/**
 * A reference point, not a product: the thinnest Node proxy there is (node:http in, undici out, bytes passed through
 * as they come, no parsing, no auth, no records), in a process of its own, in front of the provider node. What it
 * adds over the node is what one more Node HTTP hop costs on this machine: the floor under the gateway's overhead.
 * Forked by run.ts: receives `{ target }`, answers `{ ready, url, pid }`, exits when the parent goes away. Marks its
 * traffic for the hop section between `{ traceStart }` (answered `{ tracing }`) and `{ traceStop }` (answered
 * `{ marks }`).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { startHopTrace, stopHopTrace } from './hop-trace.mjs'

const PASSED = ['content-type', 'authorization', 'accept']

function pick(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of PASSED) {
    const v = headers[k]
    if (typeof v === 'string') out[k] = v
  }
  return out
}

function start(target: string) {
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, connections: 1024 })
  const server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const upstream = await request(`${target}${req.url}`, {
        method: req.method as 'POST',
        headers: pick(req.headers),
        body: chunks.length ? Buffer.concat(chunks) : null,
        dispatcher,
        bodyTimeout: 0,
      })
      const type = upstream.headers['content-type']
      res.writeHead(upstream.statusCode, typeof type === 'string' ? { 'content-type': type } : {})
      for await (const chunk of upstream.body) res.write(chunk)
      res.end()
    } catch (err) {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
      res.end(String((err as Error).message))
    }
  })
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo
    process.send?.({ ready: true, url: `http://127.0.0.1:${port}`, pid: process.pid })
  })
}

process.on('message', (m: { target?: string; traceStart?: boolean; traceStop?: boolean }) => {
  if (m.target) start(m.target)
  else if (m.traceStart) {
    startHopTrace()
    process.send?.({ tracing: true })
  } else if (m.traceStop) process.send?.({ marks: stopHopTrace() })
})
process.once('disconnect', () => process.exit(0))
