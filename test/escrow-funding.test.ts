import { execFile } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Address, type LocalAccount, parseEther, toHex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { UsageLedger } from '../src/billing/usage-ledger.ts'
import { addLedger } from '../src/chain/actions/add-ledger.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { getLedger } from '../src/chain/actions/get-ledger.ts'
import { createZgClients } from '../src/chain/clients.ts'
import { customNetwork } from '../src/chain/networks.ts'
import { anvilAccount, anvilPrivateKey } from '../src/devnet/anvil.ts'
import {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
} from '../src/devnet/backends/index.ts'
import { encodePng } from '../src/devnet/backends/png.ts'
import { type Gateway, type GatewayOptions, startGateway } from '../src/gateway/server.ts'
import { startTestStack } from './support/dev-stack.ts'
import { toneWav } from './support/wav.ts'

const e = parseEther
const KEY = 'sk-funding-test'
const ADMIN = 'sk-funding-admin'
const FRESH = 9
const run = promisify(execFile)

let stack: Awaited<ReturnType<typeof startTestStack>>
const closers: Array<() => Promise<void>> = []

beforeAll(async () => {
  stack = await startTestStack()
}, 120_000)
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await stack?.dispose()
})

/** An HTTP relay to the devnet's RPC, so a test can take the chain away from one gateway. */
async function rpcRelay(): Promise<{ url: string; close(): Promise<void> }> {
  const target = stack.devnet.network.rpcUrl
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const answer = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat(chunks),
    })
    res.writeHead(answer.status, { 'content-type': 'application/json' })
    res.end(Buffer.from(await answer.arrayBuffer()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
  closers.push(close)
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close }
}

async function gatewayFor(
  wallet: LocalAccount,
  name: string,
  rpcUrl = stack.devnet.network.rpcUrl,
  extra: Partial<GatewayOptions> = {},
) {
  const { chain, contracts } = stack.devnet.network
  const gateway = await startGateway({
    network: customNetwork({ chainId: chain.id, rpcUrl, contracts }),
    wallet,
    dataDir: join(stack.dataDir, `gw-${name}`),
    port: 0,
    devKey: KEY,
    adminKey: ADMIN,
    allowPrivateUrls: true,
    log: () => {},
    ...extra,
  })
  closers.push(() => gateway.close())
  return gateway
}

/** A wallet of its own with gas money and nothing else. */
async function newWallet(): Promise<LocalAccount> {
  const account = privateKeyToAccount(generatePrivateKey())
  await createZgClients({ network: stack.devnet.network }).publicClient.request({
    method: 'anvil_setBalance' as 'eth_chainId',
    params: [account.address, toHex(e('100'))] as unknown as undefined,
  })
  return account
}

const providerOf = (name: string): Address => stack.nodes.find((n) => n.spec.name === name)!.address

function post(g: Gateway, path: string, body: unknown) {
  const form = body instanceof FormData
  return fetch(`${g.url}/v1/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, ...(form ? {} : { 'content-type': 'application/json' }) },
    body: form ? body : JSON.stringify(body),
  })
}

const chat = (g: Gateway) =>
  post(g, 'chat/completions', { model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hello there' }] })

/** One call of every dev model: chat, embeddings, images, transcription, speech, image edit. */
function everyModel(g: Gateway): Array<Promise<Response>> {
  const audio = new FormData()
  audio.append('file', new Blob([new Uint8Array(toneWav([{ hz: 440, seconds: 0.3 }]))], { type: 'audio/wav' }), 'a.wav')
  audio.append('model', DEV_STT_MODEL)
  const edit = new FormData()
  const rgb = new Uint8ClampedArray(16 * 16 * 3).map((_, i) => (i * 5) % 256)
  edit.append('image', new Blob([new Uint8Array(encodePng(16, 16, rgb))], { type: 'image/png' }), 'in.png')
  edit.append('prompt', 'add a moon')
  edit.append('model', DEV_IMAGE_EDIT_MODEL)
  return [
    chat(g),
    post(g, 'embeddings', { model: DEV_EMBEDDING_MODEL, input: 'hello' }),
    post(g, 'images/generations', { model: DEV_IMAGE_MODEL, prompt: 'a lighthouse', n: 1 }),
    post(g, 'audio/transcriptions', audio),
    post(g, 'audio/speech', { model: DEV_TTS_MODEL, voice: 'nova', input: 'Hi.', response_format: 'wav' }),
    post(g, 'images/edits', edit),
  ]
}

async function funding(g: Gateway, refresh = false) {
  const res = await fetch(`${g.url}/admin/funding${refresh ? '?refresh=true' : ''}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  })
  expect(res.status).toBe(200)
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body under test
  return (await res.json()) as { wallet: Address; providers: any[] }
}

const checkedCalls = (g: Gateway) => g.core.escrow!.status().reduce((n, s) => n + s.checked, 0)

describe('a fresh wallet with only a ledger deposit', () => {
  let g: Gateway
  let relay: Awaited<ReturnType<typeof rpcRelay>>
  const me = anvilAccount(FRESH)

  it('calls every dev provider with no manual transfer: the gateway opens and funds each sub-account', async () => {
    // The CLI, as a user would: a ledger only.
    await run(
      process.execPath,
      ['bin/zg-gateway.js', 'account', 'create', '--amount', '30', '--network', 'devnet', '--data-dir', stack.dataDir],
      { env: { PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(FRESH) } },
    )
    const wallet = createZgClients({ network: stack.devnet.network, account: me })
    expect((await getLedger(wallet, { user: me.address }))?.availableBalance).toBe(e('30'))
    relay = await rpcRelay()
    // A policy reserve just under the 2 0G opening: a few image calls push the target past it.
    g = await gatewayFor(me, 'fresh', relay.url, { funding: { reserve: e('1.95'), intervalMs: 0 } })

    const answers = await Promise.all(everyModel(g))
    for (const res of answers) expect(res.status, await res.clone().text()).toBe(200)
    // Chat went to the verifiable (TEE) chat provider; one sub-account per provider used, opened with 2 0G.
    const used = ['chat-tee', 'embedding', 'image', 'speech', 'tts', 'image-edit'].map(providerOf)
    for (const provider of used)
      expect((await getAccount(wallet, { user: me.address, provider }))?.balance).toBe(e('2'))
    expect(await getAccount(wallet, { user: me.address, provider: providerOf('chat-standard') })).toBeUndefined()
    expect((await getLedger(wallet, { user: me.address }))?.availableBalance).toBe(e('18'))
    await vi.waitFor(() => expect(checkedCalls(g)).toBe(6), { timeout: 15_000 })
  }, 60_000)

  it('tops up in the background to unsettled + expected + reserve, moving only verified fees', async () => {
    const image = providerOf('image')
    for (let i = 0; i < 4; i++)
      expect((await post(g, 'images/generations', { model: DEV_IMAGE_MODEL, prompt: `p${i}` })).status).toBe(200)
    await vi.waitFor(() => expect(checkedCalls(g)).toBe(10), { timeout: 15_000 })
    const plan = await g.core.escrow!.rebalance(image)
    const s = g.core.escrow!.status().find((x) => x.provider === image)!
    // 5 images of 0.01 0G, all verified; the provider itself reported what it is owed.
    expect(s.verified).toBe(e('0.05'))
    expect(s.unsettledSource).toBe('provider')
    expect(s.unsettled).toBe(e('0.05'))
    expect(plan?.target).toBe(e('0.05') + e('0.05') + e('1.95'))
    // The shortfall found is moved in whole: the verified credit covers it.
    expect(plan?.amount).toBe(plan?.deficit)
    // What moved in beyond the opening: exactly the shortfall, and never more than the verified fees.
    const wallet = createZgClients({ network: stack.devnet.network, account: me })
    const account = await getAccount(wallet, { user: me.address, provider: image })
    const toppedUp = account!.balance - e('2')
    expect(toppedUp).toBe(e('0.05'))
    expect(s.movedIn).toBe(e('2') + toppedUp)
    expect(toppedUp).toBeLessThanOrEqual(s.verified)
    expect(s.state).toBe('funded')

    // ?refresh=true rebalances first: nothing left to move.
    const body = await funding(g, true)
    expect(body.wallet).toBe(me.address)
    const row = body.providers.find((p) => p.provider === image)
    expect(row).toMatchObject({ state: 'funded', target: e('2.05').toString(), disputed: 0, routed: true })
    expect(body.providers).toHaveLength(6)
  }, 60_000)

  it('stops funding a provider past the dispute threshold, refunds its sub-account and routes away from it', async () => {
    const tee = providerOf('chat-tee')
    for (let i = 0; i < 2; i++) expect((await chat(g)).status).toBe(200)
    await vi.waitFor(() => expect(checkedCalls(g)).toBe(12), { timeout: 15_000 })
    // Its three calls come back disputed, as the delivery verifier would report them (a real dispute needs a lying
    // provider): in the usage ledger and to the policy.
    const calls = (await g.core.ledger.calls()).filter((c) => c.provider === tee.toLowerCase())
    expect(calls).toHaveLength(3)
    for (const call of calls) {
      g.core.ledger.setVerification(call.requestId, 'disputed', null, 'test')
      g.core.escrow!.onReceipt(tee, 'disputed', 0n)
    }
    expect(g.core.router.isFlagged(tee)).toBe(true)
    const res = await chat(g)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-zg-provider')).toBe(providerOf('chat-standard'))
    const wallet = createZgClients({ network: stack.devnet.network, account: me })
    await vi.waitFor(
      async () => {
        const account = await getAccount(wallet, { user: me.address, provider: tee })
        expect(account!.pendingRefund).toBe(account!.balance)
      },
      { timeout: 15_000 },
    )
    const row = (await funding(g)).providers.find((p) => p.provider === tee)
    expect(row).toMatchObject({ state: 'stopped', disputed: 3, routed: false })
    expect(row.reason).toMatch(/^stopped: 3 disputed/)

    // A restart on the same data dir keeps it stopped and routed away from.
    ;(g.core.ledger as UsageLedger).flush()
    const again = await gatewayFor(me, 'fresh')
    expect(again.core.router.isFlagged(tee)).toBe(true)
    expect((await chat(again)).headers.get('x-zg-provider')).toBe(providerOf('chat-standard'))
    expect(again.core.escrow!.status().find((x) => x.provider === tee)).toMatchObject({ state: 'stopped', disputed: 3 })
  }, 60_000)

  it('account show prints the chain part and, from the gateway, the policy part', async () => {
    const show = (extra: string[]) =>
      run(
        process.execPath,
        ['bin/zg-gateway.js', 'account', 'show', '--data-dir', stack.dataDir, '--gateway', g.url, ...extra],
        { env: { PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(FRESH), ZG_ADMIN_KEY: ADMIN } },
      )
    const { stdout } = await show([])
    expect(stdout).toContain('Sub-accounts')
    expect(stdout).toContain(`Funding policy of the gateway at ${g.url} (its wallet ${me.address})`)
    const line = (name: string) =>
      stdout.split('\n').find((l) => l.startsWith(providerOf(name)) && /verified|funded|stopped|under/.test(l))
    expect(line('chat-tee')).toMatch(/stopped: 3 disputed/)
    expect(line('image')).toMatch(/funded/)
    const json = JSON.parse((await show(['--json'])).stdout)
    expect(json.subAccounts.length).toBe(7)
    expect(json.funding.providers.find((p: { provider: string }) => p.provider === providerOf('image')).target).toBe(
      e('2.05').toString(),
    )
    // The admin key is required, and a wrong one is refused with the gateway's own words.
    const refused = await run(
      process.execPath,
      ['bin/zg-gateway.js', 'account', 'show', '--data-dir', stack.dataDir, '--gateway', g.url, '--admin-key', 'nope'],
      { env: { PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(FRESH) } },
    ).catch((err: { code: number; stderr: string }) => err)
    expect((refused as { code: number }).code).not.toBe(0)
    expect((refused as { stderr: string }).stderr).toMatch(/401.*admin key/)
  }, 60_000)

  it('account resume lets a stopped provider back: routed again and its disputes forgiven, also after a restart', async () => {
    const tee = providerOf('chat-tee')
    // While a model's every provider is set aside, the client hears why and what the operator can do.
    const image = providerOf('image')
    g.core.router.setFlagged(image, true)
    const refused = await post(g, 'images/generations', { model: DEV_IMAGE_MODEL, prompt: 'p' })
    expect(refused.status).toBe(503)
    const { error } = (await refused.json()) as { error: Record<string, string> }
    expect(error.code).toBe('no_provider_available')
    expect(error.message).toMatch(/set aside after disputed responses.*resume/)
    g.core.router.setFlagged(image, false)

    const { stdout } = await run(
      process.execPath,
      ['bin/zg-gateway.js', 'account', 'resume', tee, '--gateway', g.url],
      {
        env: { PATH: process.env.PATH ?? '', ZG_ADMIN_KEY: ADMIN },
      },
    )
    expect(stdout).toMatch(/idle \(resumed after 3 disputed of \d+ checked\); routed again/)
    expect(g.core.router.isFlagged(tee)).toBe(false)
    expect((await funding(g)).providers.find((p) => p.provider === tee)).toMatchObject({ disputed: 0, routed: true })
    // Resuming what is not stopped is refused.
    const twice = await fetch(`${g.url}/admin/funding/${tee}/resume`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
    })
    expect(twice.status).toBe(409)
    // A restart on the same data dir no longer counts the forgiven disputes.
    const again = await gatewayFor(me, 'fresh')
    expect(again.core.router.isFlagged(tee)).toBe(false)
    expect(again.core.escrow!.isStopped(tee)).toBe(false)
  }, 60_000)

  it('serves providers already in use with the chain gone: requests never wait on it', async () => {
    await relay.close()
    const res = await post(g, 'embeddings', { model: DEV_EMBEDDING_MODEL, input: 'still here' })
    expect(res.status).toBe(200)
  })
})

describe("failures of the gateway's own making are not the provider's", () => {
  const breakers = (g: Gateway) => ['chat-tee', 'chat-standard'].map((n) => g.core.router.health(providerOf(n)))

  it('a wallet without ledger funds gets a 402 of its own, and no breaker moves', async () => {
    const wallet = await newWallet()
    const g = await gatewayFor(wallet, 'empty')
    for (let i = 0; i < 4; i++) {
      const res = await chat(g)
      expect(res.status).toBe(402)
      const { error } = (await res.json()) as { error: Record<string, string> }
      expect(error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_ledger_balance' })
      expect(error.message).toMatch(/no ledger/)
    }
    for (const h of breakers(g)) expect(h).toMatchObject({ failures: 0, state: 'closed' })

    // A ledger too small for a second sub-account: the message has the figures and the command.
    await addLedger(createZgClients({ network: stack.devnet.network, account: wallet }), { amount: e('3') })
    expect((await post(g, 'embeddings', { model: DEV_EMBEDDING_MODEL, input: 'x' })).status).toBe(200)
    const res = await chat(g)
    expect(res.status).toBe(402)
    const { error } = (await res.json()) as { error: Record<string, string> }
    expect(error.code).toBe('insufficient_ledger_balance')
    expect(error.message).toMatch(/ledger is empty \(1 0G available, 2 0G needed\).*zg-gateway account deposit/)
    for (const h of breakers(g)) expect(h).toMatchObject({ failures: 0, state: 'closed' })
  }, 60_000)

  it("a provider refusing for want of escrow the empty ledger could not refill: the wallet's 402, not the provider's", async () => {
    const wallet = await newWallet()
    await addLedger(createZgClients({ network: stack.devnet.network, account: wallet }), { amount: e('4') })
    const g = await gatewayFor(wallet, 'dry', undefined, { funding: { intervalMs: 0 } })
    // Two sub-accounts of 2 0G take the whole ledger.
    expect((await post(g, 'embeddings', { model: DEV_EMBEDDING_MODEL, input: 'x' })).status).toBe(200)
    const image = providerOf('image')
    const images = () => post(g, 'images/generations', { model: DEV_IMAGE_MODEL, prompt: 'p', n: 10, size: '256x256' })
    // 0.1 0G a call: the provider admits while unsettled + 0.1 + its 1 0G reserve ≤ 2 0G.
    let res = await images()
    for (let i = 0; i < 12 && res.status === 200; i++) res = await images()
    await vi.waitFor(
      () => expect(g.core.escrow!.status().find((s) => s.provider === image)?.reason).toMatch(/InsufficientAvailable/),
      { timeout: 15_000 },
    )
    res = await images()
    expect(res.status).toBe(402)
    const { error } = (await res.json()) as { error: Record<string, string> }
    expect(error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_ledger_balance' })
    expect(error.message).toMatch(/ledger is empty \(0 0G available.*zg-gateway account deposit/)
    expect(g.core.router.health(image)).toMatchObject({ failures: 0, state: 'closed' })
  }, 90_000)

  it('a chain RPC that is down gives a 503 chain_unavailable, and no breaker moves', async () => {
    const relay = await rpcRelay()
    const g = await gatewayFor(await newWallet(), 'norpc', relay.url)
    await relay.close()
    for (let i = 0; i < 4; i++) {
      const res = await chat(g)
      expect(res.status).toBe(503)
      const { error } = (await res.json()) as { error: Record<string, string> }
      expect(error).toMatchObject({ type: 'api_error', code: 'chain_unavailable' })
    }
    for (const h of breakers(g)) expect(h).toMatchObject({ failures: 0, state: 'closed' })
  }, 60_000)
})
