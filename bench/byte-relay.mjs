/**
 * A reference point for `npm run bench`, not a product: bench/byte-relay.c's twin in Node. Each client's bytes are
 * piped to its own connection to 127.0.0.1:<upstream port> and back, without reading them (no HTTP). What it adds in
 * front of the provider node is what one more Node process on the path costs before any HTTP is parsed.
 *
 * Usage: node byte-relay.mjs <upstream port>; prints the port it listens on, then serves until killed.
 */
import { createConnection, createServer } from 'node:net'

const upstream = Number(process.argv[2])
const server = createServer({ noDelay: true }, (client) => {
  const origin = createConnection({ host: '127.0.0.1', port: upstream, noDelay: true })
  client.pipe(origin).on('error', () => client.destroy())
  origin.pipe(client).on('error', () => origin.destroy())
  client.on('error', () => origin.destroy())
  origin.on('error', () => client.destroy())
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
process.once('disconnect', () => process.exit(0))
