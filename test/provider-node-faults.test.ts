/**
 * The provider node under faults, over real HTTP on anvil with the real contracts: a burst larger than a sub-account
 * can pay, clients that abandon their calls (the node itself stalled with SIGSTOP), and a chain RPC that stalls.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { worstCaseFee } from '../src/billing/worst-case-fee.ts'
import { createZgClients, type ZgWalletClients } from '../src/chain/clients.ts'
import { customNetwork } from '../src/chain/networks.ts'
import { anvilAccount } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL, type DevBackend, startDevBackend } from '../src/devnet/backends/index.ts'
import { DEFAULT_RESERVE } from '../src/provider-node/admission.ts'
import { type ProviderNode, startProviderNode } from '../src/provider-node/server.ts'
import { json } from './support/json.ts'
import { type Marketplace, PRICES, startMarketplace } from './support/marketplace.ts'
import { type ProviderProcess, spawnProviderNode } from './support/provider-process.ts'

let m: Marketplace
const closers: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  m = await startMarketplace()
}, 60_000)
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await m?.stop()
})

const MESSAGES = [{ role: 'user', content: 'Tell me about the sea' }]

async function chat(url: string, token: string, body: Record<string, unknown> = {}, signal?: AbortSignal) {
  return fetch(`${url}/v1/proxy/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: MESSAGES, ...body }),
    signal,
  })
}

const feesOf = (node: ProviderNode, who: ZgWalletClients) => {
  const user = who.walletClient.account.address.toLowerCase()
  return node.store.records().filter((r) => r.user.toLowerCase() === user)
}

describe('admission holds the worst case', () => {
  it('a burst of 100 calls never records more than the sub-account can pay beyond its reserve', async () => {
    const who = m.clientsOf(5)
    const body = { max_tokens: 50 }
    const worst = worstCaseFee('chat/completions', { messages: MESSAGES, ...body }, 0, PRICES)
    // Room for 10 worst cases beyond the reserve; the old estimate (prompt bytes only) would have admitted ~30 at once.
    const surplus = 10n * worst + worst / 2n
    await m.fund(who, parseEther('10'), DEFAULT_RESERVE + surplus)
    const token = await m.token(who)
    const answers = await Promise.all(Array.from({ length: 100 }, () => chat(m.node.url, token, body)))
    const texts = await Promise.all(answers.map((r) => r.text()))
    const statuses = answers.map((r) => r.status)
    expect(new Set(statuses)).toEqual(new Set([200, 402]))
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(10)
    const refused = JSON.parse(texts[statuses.indexOf(402)]!)
    expect(refused.error.code).toBe('insufficient_balance')
    expect(refused.error.message).toMatch(
      /this request's estimate [\d.]+ 0G .*the prompt plus max_tokens × n of output/,
    )
    const billed = feesOf(m.node, who).reduce((s, r) => s + r.fee, 0n)
    expect(billed).toBeGreaterThan(0n)
    expect(billed).toBeLessThanOrEqual(surplus)
  }, 60_000)

  it("holds a chat call without max_tokens to the model's context, and sends it unchanged", async () => {
    const who = m.clientsOf(7)
    // Room beyond the reserve for a call capped at 50 tokens, not for one that may write the dev model's 8,192.
    await m.fund(
      who,
      parseEther('10'),
      DEFAULT_RESERVE + 10n * worstCaseFee('chat/completions', { messages: MESSAGES, max_tokens: 50 }, 0, PRICES),
    )
    const token = await m.token(who)
    const uncapped = await chat(m.node.url, token)
    expect(uncapped.status).toBe(402)
    expect((await json(uncapped)).error.code).toBe('insufficient_balance')
    const capped = await chat(m.node.url, token, { max_tokens: 50 })
    expect(capped.status).toBe(200)
    // A funded user's uncapped call goes out as it came: the dev model ends its prose on its own.
    const served = await json(await chat(m.node.url, await m.token()))
    expect(served.choices[0].finish_reason).toBe('stop')
  })

  it('holds and sends the default output cap when the backend reports no context length', async () => {
    const hidden = await withoutModelList(m.backend.url)
    const node = await startProviderNode({
      clients: m.provider,
      backendUrl: hidden,
      signer: m.signer,
      dataDir: join(m.dataDir, 'capped'),
      settleIntervalMs: 0,
      defaultMaxTokens: 5,
      log: () => {},
    })
    closers.push(() => node.close())
    const res = await chat(node.url, await m.token())
    expect(res.status).toBe(200)
    const body = await json(res)
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(5)
    expect(body.choices[0].finish_reason).toBe('length')
    // A completion without one writes what the API's own default allows, no more (16 tokens), as before.
    const completion = await fetch(`${node.url}/v1/proxy/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` },
      body: JSON.stringify({ model: DEV_CHAT_MODEL, prompt: 'Once upon a time' }),
    })
    expect(completion.status).toBe(200)
    expect((await json(completion)).usage.completion_tokens).toBeLessThanOrEqual(16)
    // A stated cap is the client's own, and stays.
    const stated = await json(await chat(node.url, await m.token(), { max_tokens: 40 }))
    expect(stated.usage.completion_tokens).toBeGreaterThan(5)
  })
})

/** The backend behind a relay that answers 404 to GET /v1/models: a backend that reports no context lengths. */
async function withoutModelList(target: string): Promise<string> {
  const server = createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(404).end()
      return
    }
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const answer = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers: { 'content-type': String(req.headers['content-type'] ?? 'application/json') },
      body: Buffer.concat(chunks),
    })
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' })
    res.end(Buffer.from(await answer.arrayBuffer()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** The provider node as its own process (`zg-gateway provider serve`), so it can be stopped with SIGSTOP. */
async function serveNode(backend: DevBackend, name: string): Promise<ProviderProcess> {
  const node = await spawnProviderNode(m, { backends: [backend.url], dataDir: join(m.dataDir, name) })
  closers.push(async () => {
    node.proc.kill('SIGCONT')
    node.proc.kill('SIGKILL')
  })
  return node
}

describe('a call its client abandoned is not billed', () => {
  let node: ProviderProcess
  let slow: DevBackend

  beforeAll(async () => {
    // Each answer takes 400 ms before its first token: long enough to stop the node while the backend works.
    slow = await startDevBackend({ port: 0, firstTokenDelayMs: 400 })
    closers.push(() => slow.close())
    node = await serveNode(slow, 'stalled')
  }, 60_000)

  const unsettled = async () => {
    const res = await fetch(`${node.url}/v1/user/${m.user.walletClient.account.address}/unsettledfee`, {
      headers: { authorization: `Bearer ${await m.token()}` },
    })
    expect(res.status).toBe(200)
    return BigInt(((await res.json()) as { unsettledFee: string }).unsettledFee)
  }

  it('bills a call answered in full (the control)', async () => {
    const before = await unsettled()
    expect((await chat(node.url, await m.token(), { max_tokens: 20 })).status).toBe(200)
    expect(await unsettled()).toBeGreaterThan(before)
  })

  // Stopped before the request came (the gateway's call never got a header: the issue's case), or while the
  // backend worked on it (its answer and the client's close then wait in the node's sockets together).
  for (const when of ['before the request', 'while the backend works'] as const) {
    for (const stream of [false, true]) {
      it(`bills nothing for a ${stream ? 'stream' : 'call'} abandoned while the node was stopped ${when}`, async () => {
        const token = await m.token()
        const before = await unsettled()
        const abort = new AbortController()
        if (when === 'before the request') node.proc.kill('SIGSTOP')
        try {
          const call = chat(node.url, token, { max_tokens: 20, stream }, abort.signal)
            .then((res) => res.text())
            .catch(() => 'aborted')
          if (when === 'while the backend works') {
            await sleep(150)
            node.proc.kill('SIGSTOP')
          }
          await sleep(700)
          abort.abort()
          expect(await call).toBe('aborted')
          await sleep(100)
        } finally {
          node.proc.kill('SIGCONT')
        }
        await sleep(1_000)
        expect(await unsettled()).toBe(before)
      }, 30_000)
    }
  }

  it('bills nothing for a call whose client left while the backend was still working', async () => {
    const before = await unsettled()
    const abort = new AbortController()
    const call = chat(node.url, await m.token(), { max_tokens: 20 }, abort.signal).catch(() => 'aborted')
    await sleep(150)
    abort.abort()
    expect(await call).toBe('aborted')
    await sleep(700)
    expect(await unsettled()).toBe(before)
  })
})

/** A JSON-RPC relay in front of anvil that the test can stall: held requests are answered once it resumes. */
async function stallableRpc() {
  const target = m.anvil.rpcUrl
  let stalled = false
  const held: (() => void)[] = []
  const forward = async (body: Buffer, res: ServerResponse) => {
    try {
      const answer = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      res.writeHead(answer.status, { 'content-type': 'application/json' })
      res.end(Buffer.from(await answer.arrayBuffer()))
    } catch {
      res.destroy()
    }
  }
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks)
    if (stalled) held.push(() => void forward(body, res))
    else await forward(body, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stall() {
      stalled = true
    },
    resume() {
      stalled = false
      for (const go of held.splice(0)) go()
    },
  }
}

describe('a chain outage', () => {
  it('admits from the last known state within the risk limit and the staleness bound, quickly, then 503', async () => {
    const rpc = await stallableRpc()
    const { chain, contracts } = m.network
    const clients = createZgClients({
      network: customNetwork({ chainId: chain.id, rpcUrl: rpc.url, contracts }),
      account: anvilAccount(2),
    })
    const body = { max_tokens: 20 }
    const worst = worstCaseFee('chat/completions', { messages: MESSAGES, ...body }, 0, PRICES)
    const node = await startProviderNode({
      clients,
      backendUrl: m.backend.url,
      signer: m.signer,
      dataDir: join(m.dataDir, 'outage'),
      settleIntervalMs: 0,
      accountCacheTtlMs: 200,
      serviceCacheTtlMs: 200,
      chainReadBudgetMs: 300,
      maxStaleMs: 4_000,
      staleRiskLimit: 5n * worst,
      log: () => {},
    })
    closers.push(() => node.close())
    const token = await m.token()
    const stranger = m.clientsOf(6)
    await m.fund(stranger)
    const strangerToken = await m.token(stranger)
    const timed = async (as = token) => {
      const started = performance.now()
      const res = await chat(node.url, as, body)
      const result = { status: res.status, ms: performance.now() - started, body: await json(res) }
      return result
    }
    expect((await timed()).status).toBe(200)

    rpc.stall()
    await sleep(300)
    // Stale: five worst cases are admitted on the last known account, none waiting on the chain past the budget.
    for (let i = 0; i < 5; i++) {
      const r = await timed()
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      expect(r.ms).toBeLessThan(1_000)
    }
    const limited = await timed()
    expect(limited.status).toBe(503)
    expect(limited.body.error.code).toBe('chain_unavailable')
    expect(limited.body.error.message).toMatch(/only up to [\d.]+ 0G/)
    expect(limited.ms).toBeLessThan(1_000)
    // A user the node has never read: nothing to fall back on, refused within the budget.
    const unknown = await timed(strangerToken)
    expect(unknown.status).toBe(503)
    expect(unknown.body.error.message).toMatch(/does not know the sub-account of/)
    expect(unknown.ms).toBeLessThan(1_000)

    // Past the staleness bound: refused at once, not after the RPC's own timeout.
    await sleep(4_000)
    const tooOld = await timed()
    expect(tooOld.status).toBe(503)
    expect(tooOld.body.error.code).toBe('chain_unavailable')
    expect(tooOld.ms).toBeLessThan(1_000)

    rpc.resume()
    await vi.waitFor(async () => expect((await timed()).status).toBe(200), { timeout: 15_000, interval: 250 })
  }, 60_000)
})
