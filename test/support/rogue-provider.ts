/**
 * A stranger's machine registered as a provider that answers garbage, run as its own process for the chaos tests:
 * `node test/support/rogue-provider.ts` prints `ready: <url>`. Each behaviour is a base path, so one process stands
 * for several providers (the gateway calls `<provider url>/v1/proxy/...`):
 *
 * - `/invalid-json`: a 200 `application/json` that does not parse;
 * - `/html`: a 200 `text/html` error page, for a JSON call and a stream alike;
 * - `/huge`: a 200 `application/json` of 64 MB;
 * - `/endless`: a 200 stream that never ends (an event every few ms), or a JSON body that never ends;
 * - `/stall`: a 200 stream that sends two events, then nothing, holding the connection open.
 */
import { createServer, type ServerResponse } from 'node:http'

const MB = 1024 * 1024
const chunkEvent = (i: number) =>
  `data: ${JSON.stringify({ id: 'rogue', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: `t${i} ` }, finish_reason: null }] })}\n\n`

/** Writes `total` bytes in 1 MB writes, respecting backpressure, until done or the peer goes away. */
function writeHuge(res: ServerResponse, total: number): void {
  const block = Buffer.alloc(MB, 0x61)
  let sent = 0
  const pump = () => {
    while (sent < total && !res.destroyed) {
      sent += MB
      if (!res.write(block)) return void res.once('drain', pump)
    }
    if (!res.destroyed) res.end()
  }
  pump()
}

/** Writes pieces without end, as fast as the peer reads them, until it goes away. */
function endless(res: ServerResponse, piece: (i: number) => string): void {
  let i = 0
  const pump = () => {
    while (!res.destroyed) {
      let batch = ''
      for (let k = 0; k < 500; k++) batch += piece(i++)
      if (!res.write(batch)) return void res.once('drain', pump)
    }
  }
  pump()
}

const server = createServer((req, res) => {
  // The request body is never used: drain it, so the socket stays usable.
  req.resume()
  const mode = req.url?.split('/')[1]
  const stream = req.headers.accept === 'text/event-stream'
  switch (mode) {
    case 'invalid-json':
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end('{"id":"rogue","choices":[{"message":')
    case 'html':
      res.writeHead(200, { 'content-type': 'text/html' })
      return void res.end('<html><body><h1>502 Bad Gateway</h1></body></html>')
    case 'huge':
      res.writeHead(200, { 'content-type': 'application/json' })
      return writeHuge(res, 64 * MB)
    case 'endless':
      if (stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        return endless(res, chunkEvent)
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"id":"rogue","choices":[')
      return endless(res, () => '{"index":0},')
    case 'stall':
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(chunkEvent(0))
      res.write(chunkEvent(1))
      return
    default:
      res.writeHead(404).end()
  }
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address && typeof address === 'object') console.log(`ready: http://127.0.0.1:${address.port}`)
})
process.on('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
