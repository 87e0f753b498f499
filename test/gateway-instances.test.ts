/**
 * Two gateway processes on one PostgreSQL, paying from one wallet, in front of the dev stack's providers (anvil, the
 * real contracts). Budgets, rate limits, revocations and usage records must hold across them exactly as in one
 * process; the wallet's transactions must never collide, also when an instance is killed holding the wallet lock.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { type Address, decodeFunctionData, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ledgerManagerAbi } from '../src/chain/abi/ledger-manager.ts'
import { addLedger } from '../src/chain/actions/add-ledger.ts'
import { createZgClients } from '../src/chain/clients.ts'
import { anvilAccount, anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL, DEV_EMBEDDING_MODEL, DEV_IMAGE_MODEL, DEV_TTS_MODEL } from '../src/devnet/backends/index.ts'
import { type GatewayInstance, spawnGatewayInstance } from '../src/devnet/gateway-instances.ts'
import { connectPostgres, type Sql } from '../src/store/postgres/connect.ts'
import { startTestStack } from './support/dev-stack.ts'
import { testDatabase } from './support/postgres.ts'

const ADMIN_KEY = 'sk-instances-admin'
/** A wallet of its own (anvil account 9): a ledger deposit and no sub-account, so the instances open them. */
const WALLET = 9
const INITIAL_DEPOSIT = parseEther('2')

let stack: Awaited<ReturnType<typeof startTestStack>>
let db: Awaited<ReturnType<typeof testDatabase>>
let sql: Sql
let dir: string
let a: GatewayInstance
let b: GatewayInstance
let firstBlock: bigint
const wallet = anvilAccount(WALLET).address

beforeAll(async () => {
  ;[stack, db] = await Promise.all([startTestStack(), testDatabase()])
  sql = connectPostgres(db.url, { max: 4 })
  dir = mkdtempSync(join(tmpdir(), 'zg-instances-'))
  const clients = createZgClients({ network: stack.devnet.network, account: anvilAccount(WALLET) })
  await addLedger(clients, { amount: parseEther('100') })
  firstBlock = await clients.publicClient.getBlockNumber()
  const start = (name: string) =>
    spawnGatewayInstance({
      info: stack.devnet.info,
      walletKey: anvilPrivateKey(WALLET),
      dataDir: join(dir, name),
      store: db.url,
      adminKey: ADMIN_KEY,
      args: ['--initial-deposit', '2'],
    })
  // Started together: both migrate the empty database at once.
  ;[a, b] = await Promise.all([start('a'), start('b')])
}, 120_000)

afterAll(async () => {
  for (const g of [a, b]) g?.proc.kill('SIGKILL')
  await sql?.end({ timeout: 5 })
  await db?.dispose()
  await stack?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function admin(g: GatewayInstance, method: string, path: string, body?: unknown) {
  const res = await fetch(`${g.url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

async function createKey(settings: Record<string, unknown> = {}) {
  const r = await admin(a, 'POST', '/keys', { name: 'instances', ...settings })
  expect(r.status).toBe(201)
  return r.json as { id: string; key: string }
}

const post = (g: GatewayInstance, key: string, path: string, body: Record<string, unknown>) =>
  fetch(`${g.url}/v1/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

const chat = (g: GatewayInstance, key: string, extra: Record<string, unknown> = {}) =>
  post(g, key, 'chat/completions', { model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hello' }], ...extra })

/** The wallet's transactions since the test began, decoded, each with its receipt's status. */
async function walletTransactions() {
  const { publicClient } = createZgClients({ network: stack.devnet.network })
  const last = await publicClient.getBlockNumber()
  const txs = []
  for (let n = firstBlock + 1n; n <= last; n++) {
    const block = await publicClient.getBlock({ blockNumber: n, includeTransactions: true })
    for (const tx of block.transactions) {
      if (tx.from.toLowerCase() !== wallet.toLowerCase()) continue
      const receipt = await publicClient.getTransactionReceipt({ hash: tx.hash })
      let call: { functionName: string; args?: readonly unknown[] } | undefined
      try {
        call = decodeFunctionData({ abi: ledgerManagerAbi, data: tx.input })
      } catch {}
      txs.push({ nonce: tx.nonce, status: receipt.status, functionName: call?.functionName, args: call?.args })
    }
  }
  return txs
}

/** How many times the wallet opened a sub-account with each provider (a transfer of the initial deposit). */
async function openings(): Promise<Map<string, number>> {
  const count = new Map<string, number>()
  for (const tx of await walletTransactions()) {
    if (tx.functionName !== 'transferFund' || tx.args?.[2] !== INITIAL_DEPOSIT) continue
    const provider = String(tx.args[0]).toLowerCase()
    count.set(provider, (count.get(provider) ?? 0) + 1)
  }
  return count
}

async function anvilRpc(method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(stack.devnet.info.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  })
  const body = (await res.json()) as { result?: unknown; error?: { message: string } }
  if (body.error) throw new Error(`${method}: ${body.error.message}`)
  return body.result
}

const providerOf = (name: string) => stack.nodes.find((n) => n.spec.name === name)!.address.toLowerCase() as Address

describe('two gateway instances on one Postgres', () => {
  it('200 concurrent calls split across them never spend past one small budget; refusals cost nothing', async () => {
    // max_tokens 16: one call's worst case is ~4e12 neuron at the dev TEE chat prices; room for about 3 at once.
    const key = await createKey({ budget: '0.000012' })
    const budget = 12_000_000_000_000n
    const before = stack.backend.stats.requests
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const res = await chat(i % 2 ? b : a, key.key, { max_tokens: 16, stream: i % 4 >= 2 })
        return { status: res.status, text: await res.text(), id: res.headers.get('x-request-id') }
      }),
    )
    const ok = results.filter((r) => r.status === 200)
    const refused = results.filter((r) => r.status !== 200)
    expect(ok.length).toBeGreaterThan(0)
    expect(refused.length).toBeGreaterThan(0)
    for (const r of refused) {
      expect(r.status).toBe(429)
      expect(JSON.parse(r.text).error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' })
    }
    // Only the admitted calls reached a provider, and each has exactly one record, whichever instance served it.
    expect(stack.backend.stats.requests - before).toBe(ok.length)
    const rows = await sql`SELECT request_id, fee::text AS fee FROM calls WHERE api_key_id = ${key.id}`
    expect(rows.map((r) => r.request_id).sort()).toEqual(ok.map((r) => r.id).sort())
    const total = rows.reduce((sum, r) => sum + BigInt(r.fee as string), 0n)
    expect(total).toBeGreaterThan(0n)
    expect(total).toBeLessThanOrEqual(budget)
    for (const g of [a, b])
      expect((await admin(g, 'GET', `/keys/${key.id}`)).json).toMatchObject({ spent: total.toString(), reserved: '0' })
  }, 120_000)

  it('opened each sub-account once, from one wallet, with no transaction failed or lost to a nonce', async () => {
    // Both instances need the speech provider's sub-account at the same moment, for their first calls to it.
    const key = await createKey()
    const speech = { model: DEV_TTS_MODEL, voice: 'nova', input: 'Hello.', response_format: 'wav' }
    const statuses = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => (await post(i % 2 ? b : a, key.key, 'audio/speech', speech)).status),
    )
    expect(statuses.every((s) => s === 200)).toBe(true)
    const opened = await openings()
    expect(opened.get(providerOf('tts'))).toBe(1)
    expect(opened.get(providerOf('chat-tee'))).toBe(1)
    expect([...opened.values()].every((n) => n === 1)).toBe(true)
    const txs = await walletTransactions()
    expect(txs.every((tx) => tx.status === 'success')).toBe(true)
    for (const g of [a, b]) expect(g.output()).not.toMatch(/nonce|replacement transaction/i)
  })

  it('a key revoked through one instance is refused by the other within a second', async () => {
    const key = await createKey()
    // B verifies the key and remembers it (for 10 s, unless told otherwise).
    expect((await chat(b, key.key, { max_tokens: 4 })).status).toBe(200)
    const revokedAt = performance.now()
    expect((await admin(a, 'DELETE', `/keys/${key.id}`)).status).toBe(200)
    let status = 200
    while (status === 200 && performance.now() - revokedAt < 5000) {
      const res = await fetch(`${b.url}/v1/models`, { headers: { authorization: `Bearer ${key.key}` } })
      status = res.status
      await res.arrayBuffer()
    }
    const after = performance.now() - revokedAt
    expect(status).toBe(401)
    expect(after).toBeLessThan(1000)
  })

  it('a Responses conversation goes on through the other instance: each turn finds the one before, whoever stored it', async () => {
    const key = await createKey()
    const client = (g: GatewayInstance) => new OpenAI({ baseURL: `${g.url}/v1`, apiKey: key.key, maxRetries: 0 })
    const first = await client(a).responses.create({ model: DEV_CHAT_MODEL, input: 'Remember the word lighthouse.' })
    const second = await client(b).responses.create({
      model: DEV_CHAT_MODEL,
      input: 'Which word?',
      previous_response_id: first.id,
      stream: true,
    })
    let secondId: string | undefined
    for await (const event of second) if (event.type === 'response.completed') secondId = event.response.id
    const third = await client(a).responses.create({
      model: DEV_CHAT_MODEL,
      input: 'Again?',
      previous_response_id: secondId,
    })
    const items = await client(b).responses.inputItems.list(third.id, { order: 'asc' })
    const said = items.data
      .filter((i) => i.type === 'message' && i.role === 'user')
      .map((i) => (i as { content: Array<{ text?: string }> }).content[0]?.text)
    expect(said).toEqual(['Remember the word lighthouse.', 'Which word?', 'Again?'])
    expect((await client(b).responses.retrieve(first.id)).id).toBe(first.id)
  })

  it('a rate limit holds across the instances: 10 a minute are 10, wherever they land', async () => {
    const key = await createKey({ rpm: 10 })
    const statuses = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const res = await chat(i % 2 ? b : a, key.key, { max_tokens: 4 })
        await res.arrayBuffer()
        return res.status
      }),
    )
    expect(statuses.filter((s) => s === 200)).toHaveLength(10)
    expect(statuses.filter((s) => s === 429)).toHaveLength(20)
  })

  it('kill -9 of one instance under load: the other serves on, every answer received has one record, and the wallet lock passes on', async () => {
    const key = await createKey()
    const { publicClient } = createZgClients({ network: stack.devnet.network })
    const pending = async () =>
      (await publicClient.getTransactionCount({ address: wallet, blockTag: 'pending' })) -
      (await publicClient.getTransactionCount({ address: wallet, blockTag: 'latest' }))
    // Blocks wait to be mined: A sends the image provider's opening under the wallet lock and dies before it is.
    await anvilRpc('evm_setAutomine', [false])
    const dying = post(a, key.key, 'images/generations', { model: DEV_IMAGE_MODEL, prompt: 'a lighthouse' }).catch(
      () => undefined,
    )
    while ((await pending()) === 0) await new Promise((r) => setTimeout(r, 20))
    const load = Array.from({ length: 40 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 10))
      const g = i % 2 ? b : a
      try {
        const res = await chat(g, key.key, { max_tokens: 8, stream: i % 3 === 0 })
        const text = await res.text()
        return { g, status: res.status, id: res.headers.get('x-request-id'), complete: text.length > 0 }
      } catch {
        return { g, status: 0, id: null, complete: false }
      }
    })
    await new Promise((r) => setTimeout(r, 60))
    a.proc.kill('SIGKILL')
    const results = await Promise.all(load)
    await dying
    // B answered every call sent to it.
    expect(results.filter((r) => r.g === b).every((r) => r.status === 200)).toBe(true)
    const received = results.filter((r) => r.status === 200 && r.complete)
    expect(received.length).toBeGreaterThanOrEqual(20)
    const ids = received.map((r) => r.id!)
    const rows = await sql`SELECT request_id, count(*)::int AS n FROM calls WHERE request_id IN ${sql(ids)}
                           GROUP BY request_id`
    expect(rows).toHaveLength(ids.length)
    expect(rows.every((r) => r.n === 1)).toBe(true)
    // B takes the lock A's death let go, and waits for A's transaction to be mined rather than opening again.
    const image = post(b, key.key, 'images/generations', { model: DEV_IMAGE_MODEL, prompt: 'a boat' })
    await new Promise((r) => setTimeout(r, 1000))
    expect(await pending()).toBe(1)
    await anvilRpc('evm_mine')
    await anvilRpc('evm_setAutomine', [true])
    expect((await image).status).toBe(200)
    expect((await post(b, key.key, 'embeddings', { model: DEV_EMBEDDING_MODEL, input: 'sea' })).status).toBe(200)
    const opened = await openings()
    expect(opened.get(providerOf('image'))).toBe(1)
    expect(opened.get(providerOf('embedding'))).toBe(1)
    const txs = await walletTransactions()
    expect(txs.every((tx) => tx.status === 'success')).toBe(true)
    expect(new Set(txs.map((tx) => tx.nonce)).size).toBe(txs.length)
  }, 120_000)
})
