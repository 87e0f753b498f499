import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runLoad, type Target } from '../bench/load.ts'

/** Two real servers that log which of them each request reached, in order. */
const arrivals: string[] = []
const servers: Server[] = []
const targets: Target[] = []

beforeAll(async () => {
  for (const name of ['a', 'b']) {
    const server = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        arrivals.push(name)
        res.end('{}')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    const { port } = server.address() as AddressInfo
    targets.push({
      name,
      url: `http://127.0.0.1:${port}/`,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
  }
})
afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve))
})

describe('the load generator, latency in blocks', () => {
  it('measures each target in turns of a block, each turn after its own unmeasured calls', async () => {
    arrivals.length = 0
    const r = await runLoad({
      mode: 'latency',
      targets,
      warmup: 1,
      requests: 6,
      blocks: { size: 3, warmup: 2, pauseMs: 1 },
      maxSeconds: 30,
    })
    if (r.mode !== 'latency') throw new Error('not a latency result')
    expect(r.truncated).toBe(false)
    expect(r.results.map((x) => [x.name, x.latencyMs.n, x.errors])).toEqual([
      ['a', 6, 0],
      ['b', 6, 0],
    ])
    // One warm-up round robin, then per turn 2 unmeasured + 3 measured calls, a, b, a, b.
    const turn = (t: string) => Array(5).fill(t)
    expect(arrivals).toEqual(['a', 'b', ...turn('a'), ...turn('b'), ...turn('a'), ...turn('b')])
  })

  it('without blocks, alternates the targets call by call', async () => {
    arrivals.length = 0
    const r = await runLoad({ mode: 'latency', targets, warmup: 0, requests: 3, maxSeconds: 30 })
    if (r.mode !== 'latency') throw new Error('not a latency result')
    expect(r.results.map((x) => x.latencyMs.n)).toEqual([3, 3])
    expect(arrivals).toEqual(['a', 'b', 'b', 'a', 'a', 'b'])
  })
})
