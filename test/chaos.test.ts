/**
 * Chaos on the devnet, from the outside: the gateway, two honest provider nodes and a rogue provider each run as
 * their own process, on anvil with the real contracts. Providers are killed, stopped and made to answer garbage;
 * clients must notice none of it beyond an honest error.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Address, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { acknowledgeTEESignerByOwner } from '../src/chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addLedger } from '../src/chain/actions/add-ledger.ts'
import { addOrUpdateService } from '../src/chain/actions/add-or-update-service.ts'
import { anvilAccount, anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { type Marketplace, PRICES, startMarketplace } from './support/marketplace.ts'
import { chainArgsOf, spawnProviderNode } from './support/provider-process.ts'

const API_KEY = 'sk-chaos'
const ADMIN_KEY = 'sk-chaos-admin'
/** Anvil accounts: honest provider nodes, rogue providers, the gateway's wallet. */
const HONEST = [2, 3] as const
const ROGUES = { 'invalid-json': 4, html: 5, huge: 6, endless: 7, stall: 8 } as const
const WALLET = 9
const FIRST_BYTE_S = 2
const IDLE_S = 1

let m: Marketplace
let chainArgs: string[]
const procs = new Set<ChildProcess>()

/** Runs `node <args>` until it prints `ready: <url>`. */
function spawnReady(args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  procs.add(proc)
  proc.once('exit', () => procs.delete(proc))
  let out = ''
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d
      const ready = out.match(/^ready: (\S+)/m)
      if (ready) resolve({ proc, url: ready[1]!.replace(/\/v1$/, '') })
    }
    proc.stdout!.on('data', onData)
    proc.stderr!.on('data', onData)
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}:\n${out}`)))
  })
}

const exited = (proc: ChildProcess) =>
  proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', r))

type Node = { account: number; address: Address; url: string; proc: ChildProcess; port: string }
const nodes: Node[] = []

/** An honest provider node (`zg-gateway provider serve`), on `port` (0: any). */
async function serveNode(account: number, port = '0'): Promise<Node> {
  const { proc, url } = await spawnProviderNode(m, {
    backends: [m.backend.url],
    dataDir: join(m.dataDir, `node-${account}`),
    port: Number(port),
    account,
  })
  procs.add(proc)
  proc.once('exit', () => procs.delete(proc))
  return { account, address: anvilAccount(account).address, url, proc, port: new URL(url).port }
}

async function register(account: number, url: string, signer: Address, verifiability: string) {
  const clients = m.clientsOf(account)
  await addOrUpdateService(clients, {
    service: {
      serviceType: 'chatbot',
      url,
      model: DEV_CHAT_MODEL,
      verifiability,
      ...PRICES,
      additionalInfo: JSON.stringify({ TargetSeparated: false }),
      teeSignerAddress: signer,
    },
    stake: parseEther('100'),
  })
  await acknowledgeTEESignerByOwner(m.owner, { provider: clients.walletClient.account.address })
}

/** The signer a node made in its data dir (insecure dev signer: the key file holds the private key). */
async function signerOf(node: Node): Promise<Address> {
  const res = await fetch(`${node.url}/v1/quote`)
  const body = (await res.json()) as { provider_signer?: Address; signing_address?: Address }
  return (body.provider_signer ?? body.signing_address)!
}

let gateway: { url: string; proc: ChildProcess }
let rogue: string

beforeAll(async () => {
  m = await startMarketplace({ startNode: false, tokenDelayMs: 15 })
  chainArgs = chainArgsOf(m)
  for (const account of HONEST) {
    const node = await serveNode(account)
    nodes.push(node)
    await register(account, node.url, await signerOf(node), 'TeeML')
  }
  rogue = (await spawnReady(['test/support/rogue-provider.ts'])).url
  for (const [mode, account] of Object.entries(ROGUES))
    await register(account, `${rogue}/${mode}`, anvilAccount(account).address, 'standard')
  await addLedger(m.clientsOf(WALLET), { amount: parseEther('100') })
  gateway = await spawnReady(
    [
      'bin/zg-gateway.js',
      'serve',
      '--port',
      '0',
      '--api-key',
      API_KEY,
      '--admin-key',
      ADMIN_KEY,
      '--allow-private-urls',
      '--first-byte-timeout',
      String(FIRST_BYTE_S),
      '--idle-timeout',
      String(IDLE_S),
      '--timeout',
      '30',
      '--breaker-threshold',
      '2',
      '--breaker-cooldown',
      '1',
      '--probe-interval',
      '1',
      '--data-dir',
      join(m.dataDir, 'gateway'),
      ...chainArgs,
    ],
    // As the Dockerfile runs it: glibc hands large freed buffers back to the system (docs/performance.md).
    { ZG_PRIVATE_KEY: anvilPrivateKey(WALLET), MALLOC_MMAP_THRESHOLD_: '65536' },
  )
}, 120_000)

afterAll(async () => {
  for (const proc of procs) {
    proc.kill('SIGCONT')
    proc.kill('SIGKILL')
  }
  await m?.stop()
})

const chat = (opts: { pin?: Address; stream?: boolean; fallbacks?: boolean; content?: string } = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${API_KEY}`,
      'content-type': 'application/json',
      ...(opts.pin && { 'x-0g-provider-address': opts.pin }),
      ...(opts.fallbacks === false && { 'x-0g-provider-allow-fallbacks': 'false' }),
    },
    body: JSON.stringify({
      model: DEV_CHAT_MODEL,
      messages: [{ role: 'user', content: opts.content ?? 'hello there' }],
      stream: opts.stream ?? false,
    }),
  })

/** The SSE events of a streamed answer, as the client saw them. */
async function events(res: Response): Promise<string[]> {
  const text = await res.text()
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6))
}

async function providerHealth(address: Address) {
  const res = await fetch(`${gateway.url}/admin/providers`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  expect(res.status).toBe(200)
  const body = (await res.json()) as { data: Array<{ provider: Address; breaker: { state: string } }> }
  return body.data.find((p) => p.provider === address)!.breaker
}

const rss = () => {
  const status = readFileSync(`/proc/${gateway.proc.pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

const rogueAddress = (mode: keyof typeof ROGUES) => anvilAccount(ROGUES[mode]).address

describe('a provider that answers garbage', () => {
  it('a 200 with JSON that does not parse, or an HTML page: the next provider answers, or an OpenAI-shaped 502', async () => {
    // JSON that does not parse for a JSON call; an HTML page where a stream was asked for (and then for JSON).
    for (const [mode, stream] of [
      ['invalid-json', false],
      ['html', true],
    ] as const) {
      const res = await chat({ pin: rogueAddress(mode), stream })
      expect(res.status, mode).toBe(200)
      expect(res.headers.get('x-zg-attempts')).toBe('2')
      expect(HONEST.map((a) => anvilAccount(a).address)).toContain(res.headers.get('x-zg-provider'))
      await res.arrayBuffer()
      const alone = await chat({ pin: rogueAddress(mode), fallbacks: false })
      expect(alone.status).toBe(502)
      const { error } = (await alone.json()) as { error: Record<string, string> }
      expect(error.code).toBe('upstream_protocol_error')
      expect(error.message).toContain(rogueAddress(mode))
      // Two failures in a row: its circuit is open, and calls go elsewhere first.
      expect((await providerHealth(rogueAddress(mode))).state).toBe('open')
    }
  }, 60_000)

  it('64 MB, and an answer or a stream that never ends: a clean end, and the memory comes back', async () => {
    const before = rss()
    const huge = await chat({ pin: rogueAddress('huge') })
    expect(huge.status).toBe(200)
    expect(huge.headers.get('x-zg-attempts')).toBe('2')
    await huge.arrayBuffer()
    /** Each garbage answer once, from that provider alone: a clean OpenAI-shaped end every time. */
    const round = async () => {
      for (const mode of ['huge', 'endless'] as const) {
        const res = await chat({ pin: rogueAddress(mode), fallbacks: false })
        expect(res.status).toBe(502)
        expect(((await res.json()) as { error: Record<string, string> }).error.code).toBe('upstream_too_large')
      }
      // A stream that never ends is ended by the gateway's cap, with an error event and no [DONE].
      const endless = await chat({ pin: rogueAddress('endless'), stream: true, fallbacks: false })
      expect(endless.status).toBe(200)
      const seen = await events(endless)
      expect(seen.at(-1)).not.toBe('[DONE]')
      expect(JSON.parse(seen.at(-1)!).error.message).toMatch(/sent a stream over \d+ bytes/)
    }
    await round()
    await round()
    await round()
    // The gateway still serves, and what it read of the garbage is given back.
    expect((await chat()).status).toBe(200)
    await vi.waitFor(() => expect(rss() - before).toBeLessThan(20 * 1024 * 1024), { timeout: 20_000, interval: 500 })
  }, 120_000)

  it('a stream that stalls mid-way ends with an error event after the idle timeout', async () => {
    const started = performance.now()
    const res = await chat({ pin: rogueAddress('stall'), stream: true, fallbacks: false })
    expect(res.status).toBe(200)
    const seen = await events(res)
    const took = performance.now() - started
    expect(seen.length).toBe(3)
    expect(JSON.parse(seen[2]!).error.message).toMatch(new RegExp(`sent nothing for ${IDLE_S * 1000} ms`))
    expect(took).toBeGreaterThanOrEqual(IDLE_S * 1000)
  }, 30_000)
})

describe('honest providers that die or stall', () => {
  it('killed before the request: another provider serves it, and the client sees a normal answer', async () => {
    const [a, b] = nodes as [Node, Node]
    a.proc.kill('SIGKILL')
    await exited(a.proc)
    const res = await chat({ pin: a.address })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-zg-provider')).toBe(b.address)
    expect(((await res.json()) as { choices: unknown[] }).choices.length).toBe(1)
    nodes[0] = await serveNode(a.account, a.port)
    // Back, it is probed and taken back.
    await vi.waitFor(async () => expect((await providerHealth(a.address)).state).toBe('closed'), {
      timeout: 20_000,
      interval: 250,
    })
  }, 60_000)

  it('killed mid-stream: an error event, no [DONE]; the next call goes elsewhere; the breaker opens, then closes', async () => {
    const [a, b] = nodes as [Node, Node]
    const res = await chat({ pin: a.address, stream: true, content: 'a long story please' })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-zg-provider')).toBe(a.address)
    const reader = res.body!.getReader()
    await reader.read()
    a.proc.kill('SIGKILL')
    await exited(a.proc)
    let text = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += Buffer.from(value).toString('utf8')
    }
    expect(text).not.toContain('[DONE]')
    expect(text).toMatch(/"error":\{"message":"provider 0x[0-9a-fA-F]{40} failed mid-stream/)
    const next = await chat({ pin: a.address })
    expect(next.status).toBe(200)
    expect(next.headers.get('x-zg-provider')).toBe(b.address)
    await vi.waitFor(async () => expect((await providerHealth(a.address)).state).toBe('open'), { timeout: 10_000 })
    nodes[0] = await serveNode(a.account, a.port)
    await vi.waitFor(
      async () => {
        expect((await chat({ pin: a.address })).headers.get('x-zg-provider')).toBe(a.address)
        expect((await providerHealth(a.address)).state).toBe('closed')
      },
      { timeout: 60_000, interval: 1_000 },
    )
  }, 120_000)

  it('hangs before its headers (SIGSTOP): served by another within the first-byte timeout, and bills nothing', async () => {
    const [a, b] = nodes as [Node, Node]
    const unsettled = async () => {
      const token = await m.token(m.clientsOf(WALLET), { provider: a.address })
      const res = await fetch(`${a.url}/v1/user/${anvilAccount(WALLET).address}/unsettledfee`, {
        headers: { authorization: `Bearer ${token}` },
      })
      expect(res.status).toBe(200)
      return ((await res.json()) as { unsettledFee: string }).unsettledFee
    }
    const before = await unsettled()
    a.proc.kill('SIGSTOP')
    try {
      const started = performance.now()
      const res = await chat({ pin: a.address, stream: true })
      expect(res.status).toBe(200)
      expect(res.headers.get('x-zg-provider')).toBe(b.address)
      expect(performance.now() - started).toBeLessThan(FIRST_BYTE_S * 1000 + 5_000)
      expect((await events(res)).at(-1)).toBe('[DONE]')
    } finally {
      a.proc.kill('SIGCONT')
    }
    // Awake again, it bills nothing for the call the gateway abandoned.
    await new Promise((r) => setTimeout(r, 1_000))
    expect(await unsettled()).toBe(before)
  }, 60_000)
})
