import { STATUS_CODES } from 'node:http'
import { Agent, type Dispatcher, request } from 'undici'

let shared: Agent | undefined

/** The keep-alive pool of every RPC transport in the process (its idle sockets do not hold the process open). */
function rpcAgent(): Agent {
  shared ??= new Agent({ keepAliveTimeout: 10_000, connections: 32 })
  return shared
}

/**
 * A `fetch` for viem's HTTP transport over undici's `request`, the client the gateway already uses for providers.
 * Node's global fetch is a second copy of undici with an HTTP parser of its own: its WebAssembly, optimized on first
 * use, and fetch's machinery cost a process some 15-20 MB of memory for nothing but JSON-RPC posts. viem reads
 * status, headers and the body of what this returns, as it would of fetch's answer.
 */
export function rpcFetch(dispatcher: Dispatcher = rpcAgent()): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
    const headers: Record<string, string> = {}
    new Headers(init?.headers).forEach((value, key) => {
      headers[key] = value
    })
    const method = (init?.method ?? 'GET').toUpperCase() as Dispatcher.HttpMethod
    const res = await request(url, {
      method,
      headers,
      body: init?.body as string | Uint8Array | null | undefined,
      signal: init?.signal ?? undefined,
      dispatcher,
    })
    const responseHeaders = new Headers()
    for (const [key, value] of Object.entries(res.headers)) {
      if (value === undefined) continue
      for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(key, v)
    }
    const noBody = res.statusCode === 204 || res.statusCode === 304 || method === 'HEAD'
    let body: Uint8Array | null = null
    if (noBody) await res.body.dump()
    else body = new Uint8Array(await res.body.arrayBuffer())
    return new Response(body, {
      status: res.statusCode,
      statusText: STATUS_CODES[res.statusCode] ?? '',
      headers: responseHeaders,
    })
  }
}
