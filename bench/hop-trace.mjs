/**
 * Hop marks for `npm run bench`'s hop section: every process of a request's path (load generator, gateway, bare
 * proxy, the stack with the provider node and the backend) stamps the moments its HTTP traffic passes through, on
 * the one clock they share (CLOCK_MONOTONIC, `process.hrtime.bigint()`), from Node's and undici's diagnostics
 * channels. bench/hops.ts lines the marks of all processes up into where the time of one call goes.
 *
 * Plain JavaScript: bench/gateway-process.mjs imports it (on demand, when run.ts asks for marks), and that process
 * loads no TypeScript.
 *
 * Marks: `[ns, what, port]`, with `what` one of
 * - `receive`: an HTTP server parsed a request's headers (`port`: the server's);
 * - `write`: the server's first write of that response, headers and first bytes (`port`: the server's);
 * - `create`: an undici request was made (`port`: the upstream's);
 * - `sent`: its headers were written to the socket;
 * - `headers`: its response headers arrived;
 * - in the gateway, its own steps (src/gateway/steps.ts: `app`, `auth`, `body`, `validated`, `routed`, `relay`), from
 *   its `zg-gateway:step` channel (`port`: 0).
 *
 * @typedef {import('./hop-trace.d.mts').HopMark} HopMark
 */
import diagnostics from 'node:diagnostics_channel'

/** @type {HopMark[] | undefined} */
let marks
const LIMIT = 200_000

/** @param {HopMark[1]} what @param {number} port */
function mark(what, port) {
  if (marks && marks.length < LIMIT) marks.push([Number(process.hrtime.bigint()), what, port])
}

/** @param {{ origin?: string | URL }} request */
function upstreamPort(request) {
  const origin = String(request.origin ?? '')
  const port = Number(origin.slice(origin.lastIndexOf(':') + 1))
  return Number.isInteger(port) ? port : 0
}

/** @param {{ server: import('node:http').Server, response: import('node:http').ServerResponse }} message */
function onRequestStart({ server, response }) {
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  mark('receive', port)
  // The response's first write or end is when its headers (and, for a stream, its first event) go out.
  const { write, end } = response
  let first = true
  const once = () => {
    if (!first) return
    first = false
    mark('write', port)
  }
  response.write = /** @type {typeof write} */ (
    (...args) => {
      once()
      return Reflect.apply(write, response, args)
    }
  )
  response.end = /** @type {typeof end} */ (
    (...args) => {
      once()
      return Reflect.apply(end, response, args)
    }
  )
}

/** @param {string} what @returns {(message: any) => void} */
const onUndici = (what) => (message) => mark(/** @type {HopMark[1]} */ (what), upstreamPort(message.request))

/** @type {Array<[string, (message: any) => void]>} */
const SUBSCRIPTIONS = [
  ['http.server.request.start', onRequestStart],
  ['zg-gateway:step', (name) => mark(name, 0)],
  ['undici:request:create', onUndici('create')],
  ['undici:client:sendHeaders', onUndici('sent')],
  ['undici:request:headers', onUndici('headers')],
]

/** Starts marking (again from nothing). */
export function startHopTrace() {
  marks = []
  for (const [name, fn] of SUBSCRIPTIONS) diagnostics.subscribe(name, fn)
}

/** Stops marking; the marks since startHopTrace(). @returns {HopMark[]} */
export function stopHopTrace() {
  for (const [name, fn] of SUBSCRIPTIONS) diagnostics.unsubscribe(name, fn)
  const out = marks ?? []
  marks = undefined
  return out
}
