/**
 * One provider-node process (`zg-gateway provider serve`, the real CLI) in front of two dev backends, on anvil with
 * the real contracts: calls are spread over both; one stopped, calls go on on the other; both stopped, a clear
 * OpenAI-shaped 503; one back, it serves again once the health check has seen it.
 */
import type { Address } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL, startDevBackend } from '../src/devnet/backends/index.ts'
import { type Marketplace, startMarketplace } from './support/marketplace.ts'
import { type ProviderProcess, spawnProviderNode } from './support/provider-process.ts'

type DevBackend = Awaited<ReturnType<typeof startDevBackend>>
type BackendHealth = { index: number; url: string; up: boolean; in_flight: number; calls: number; error: string | null }

let m: Marketplace
let a: DevBackend
let b: DevBackend
let node: ProviderProcess

function serveNode(backends: string[]): Promise<typeof node> {
  return spawnProviderNode(m, { backends, dataDir: m.dataDir, args: ['--backend-health-interval', '0.5'] })
}

async function health(): Promise<{ status: string; signer: Address; backends: BackendHealth[] }> {
  return (await (await fetch(`${node.url}/health`)).json()) as never
}

async function chat(): Promise<{
  status: number
  retryAfter: string | null
  body: { error?: Record<string, unknown> }
}> {
  const res = await fetch(`${node.url}/v1/proxy/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` },
    body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
  })
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as never }
}

async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${node.output().slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

beforeAll(async () => {
  m = await startMarketplace({ startNode: false })
  ;[a, b] = await Promise.all([startDevBackend({ port: 0 }), startDevBackend({ port: 0 })])
  node = await serveNode([a.url, `${b.url}/v1`])
  await m.register(node.url, (await health()).signer)
}, 120_000)

afterAll(async () => {
  node?.proc.kill('SIGKILL')
  await Promise.allSettled([a?.close(), b?.close()])
  await m?.stop()
})

describe('a provider node over several backends', () => {
  it('spreads calls over both backends and shows them in /health', async () => {
    const statuses = await Promise.all(Array.from({ length: 24 }, async () => (await chat()).status))
    expect(statuses.every((s) => s === 200)).toBe(true)
    const { status, backends } = await health()
    expect(status).toBe('ok')
    expect(backends.map((x) => x.url)).toEqual([a.url, b.url])
    expect(backends.every((x) => x.up && x.in_flight === 0)).toBe(true)
    expect(backends[0]!.calls + backends[1]!.calls).toBe(24)
    // Least busy first, ties in turn: neither backend is left idle, nor takes nearly all.
    for (const x of backends) expect(x.calls).toBeGreaterThanOrEqual(4)
  }, 60_000)

  it('goes on on the other backend when one stops, without failing a call', async () => {
    await b.close()
    const results = await Promise.all(Array.from({ length: 12 }, () => chat()))
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200))
    await until('b marked down', async () => (await health()).backends[1]!.up === false)
    const { backends } = await health()
    expect(backends[0]!.up).toBe(true)
    expect(backends[1]!.error).toBeTruthy()
    // The node's /metrics (loopback) says the same, a gauge per backend.
    const metrics = await (await fetch(`${node.url}/metrics`)).text()
    expect(metrics).toContain(`zg_provider_backend_up{backend="${a.url}"} 1`)
    expect(metrics).toContain(`zg_provider_backend_up{backend="${b.url}"} 0`)
    expect(metrics).toMatch(new RegExp(`zg_provider_backend_calls\\{backend="${b.url}"\\} [1-9]`))
  }, 60_000)

  it('answers an OpenAI-shaped 503 when every backend is down', async () => {
    await a.close()
    const { status, body, retryAfter } = await chat()
    expect(status).toBe(503)
    expect(body.error).toMatchObject({ code: 'backend_unavailable', type: 'server_error', param: null })
    expect(retryAfter).toBe('5')
    expect(String(body.error?.message)).toMatch(/no model backend/)
    await until('both marked down', async () => (await health()).backends.every((x) => !x.up))
    expect((await health()).status).toBe('degraded')
    const again = await chat()
    expect(again.status).toBe(503)
  }, 60_000)

  it('serves again once the health check finds a backend back', async () => {
    a = await startDevBackend({ port: a.port })
    await until('a back up', async () => (await health()).backends[0]!.up)
    const results = await Promise.all(Array.from({ length: 4 }, () => chat()))
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect((await health()).backends[1]!.up).toBe(false)
    expect(node.output()).toMatch(/backend .* is up again/)
  }, 60_000)
})
