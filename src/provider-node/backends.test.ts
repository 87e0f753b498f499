import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { BackendPool } from './backends.ts'

/** A backend whose GET /v1/models answers `status` (or never, with `hang`). */
async function fakeBackend(opts: { status?: number; hang?: boolean } = {}): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (opts.hang) return
    res.writeHead(req.url === '/v1/models' ? (opts.status ?? 200) : 404).end('{}')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

const servers: Server[] = []
const pools: BackendPool[] = []
afterEach(() => {
  for (const p of pools.splice(0)) p.close()
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    s.close()
  }
})

const pool = (urls: string[], extra: Partial<ConstructorParameters<typeof BackendPool>[0]> = {}) => {
  const p = new BackendPool({ urls, healthIntervalMs: 60_000, healthTimeoutMs: 300, ...extra })
  pools.push(p)
  return p
}

describe('BackendPool', () => {
  it('gives each call the least busy backend, ties in turn', () => {
    const p = pool(['http://127.0.0.1:1', 'http://127.0.0.1:2/v1/', 'http://127.0.0.1:3'])
    expect(p.states().map((b) => b.url)).toEqual(['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'])
    const first = p.take()!
    const second = p.take()!
    const third = p.take()!
    expect(new Set([first.url, second.url, third.url]).size).toBe(3)
    p.done(second)
    expect(p.take()).toBe(second)
    expect(p.states().map((b) => b.inFlight)).toEqual([1, 1, 1])
  })

  it('passes over a backend marked down, and skips those already tried', () => {
    const p = pool(['http://127.0.0.1:1', 'http://127.0.0.1:2'])
    const [a, b] = [p.take()!, p.take()!]
    p.done(a)
    p.done(b)
    p.down(a, 'connect ECONNREFUSED')
    for (let i = 0; i < 3; i++) {
      const got = p.take()!
      expect(got).toBe(b)
      p.done(got)
    }
    expect(p.take(new Set([b]))).toBeUndefined()
    p.down(b, 'refused')
    expect(p.take()).toBeUndefined()
  })

  it('never passes over a lone backend (nor checks it): a node with one behaves as before', () => {
    const p = pool(['http://127.0.0.1:1'])
    const only = p.take()!
    p.done(only)
    p.down(only, 'refused')
    expect(p.take()).toBe(only)
    expect(p.states()[0]).toMatchObject({ up: true, checkedAt: null })
  })

  it('marks backends up or down by GET /v1/models within the timeout', async () => {
    const up = await fakeBackend()
    const failing = await fakeBackend({ status: 500 })
    const slow = await fakeBackend({ hang: true })
    const gone = await fakeBackend()
    await new Promise((r) => gone.server.close(r))
    servers.push(up.server, failing.server, slow.server)
    const p = pool([up.url, failing.url, slow.url, gone.url])
    await p.check()
    const states = p.states()
    expect(states.map((s) => s.up)).toEqual([true, false, false, false])
    expect(states[1]!.error).toMatch(/500/)
    expect(states[2]!.error).toMatch(/no answer within 300 ms/)
    expect(states[3]!.error).toMatch(/ECONNREFUSED/)
    expect(states.every((s) => s.checkedAt !== null)).toBe(true)
  })
})
