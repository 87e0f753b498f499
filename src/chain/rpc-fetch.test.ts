import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPublicClient, http } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rpcFetch } from './rpc-fetch.ts'

let server: Server
let url: string
const seen: Array<{ method?: string; headers: IncomingMessage['headers']; body: string }> = []

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    seen.push({ method: req.method, headers: req.headers, body })
    if (req.url === '/rpc') {
      const { id, method } = JSON.parse(body)
      res.setHeader('content-type', 'application/json')
      if (method === 'eth_chainId') res.end(JSON.stringify({ jsonrpc: '2.0', id, result: '0x4123' }))
      else res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32601, message: `no ${method} here` } }))
    } else if (req.url === '/empty') {
      res.writeHead(204).end()
    } else if (req.url === '/slow') {
      setTimeout(() => res.end('late'), 2_000)
    } else {
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.writeHead(503, { 'content-type': 'text/plain' }).end('overloaded')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})

describe('rpcFetch', () => {
  const fetch = rpcFetch()

  it('posts what it is given and answers like fetch', async () => {
    const res = await fetch(`${url}/rpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-trace': 't1' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'eth_chainId' }),
    })
    expect(res.ok).toBe(true)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 7, result: '0x4123' })
    expect(seen.at(-1)).toMatchObject({ method: 'POST', headers: { 'x-trace': 't1' } })
  })

  it('keeps error statuses, their text and repeated headers', async () => {
    const res = await fetch(new URL(`${url}/down`))
    expect(res.ok).toBe(false)
    expect(res.status).toBe(503)
    expect(res.statusText).toBe('Service Unavailable')
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
    expect(await res.text()).toBe('overloaded')
    expect(seen.at(-1)?.method).toBe('GET')
  })

  it('answers a body-less status without a body', async () => {
    const res = await fetch(`${url}/empty`, { method: 'POST', body: '{}' })
    expect(res.status).toBe(204)
    expect(res.body).toBeNull()
  })

  it('is aborted by its signal', async () => {
    const started = performance.now()
    await expect(fetch(`${url}/slow`, { signal: AbortSignal.timeout(50) })).rejects.toThrow()
    expect(performance.now() - started).toBeLessThan(1_500)
  })

  it("carries viem's JSON-RPC: results, and RPC errors with their code", async () => {
    const client = createPublicClient({ transport: http(`${url}/rpc`, { fetchFn: fetch, retryCount: 0 }) })
    expect(await client.getChainId()).toBe(0x4123)
    await expect(client.getBlockNumber()).rejects.toMatchObject({ code: -32601 })
  })
})
