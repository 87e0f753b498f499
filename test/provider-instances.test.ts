/**
 * Two provider-node processes (`zg-gateway provider serve`, the real CLI) serving ONE registered service (one
 * provider wallet, one TEE signer key) on one PostgreSQL, behind a round-robin front that is the service's on-chain
 * URL; anvil with the real contracts. Every delivered call has one record whichever node served it, also when a node
 * is killed mid-load; settlement runs on one node at a time; every record is settled exactly once, and the chain
 * moved exactly the records' fees, from a wallet whose transactions never collide.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Address, parseEventLogs } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inferenceServingAbi } from '../src/chain/abi/inference-serving.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import type { ZgWalletClients } from '../src/chain/clients.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { startRoundRobin } from '../src/devnet/gateway-instances.ts'
import { connectPostgres, type Sql } from '../src/store/postgres/connect.ts'
import { type Marketplace, startMarketplace } from './support/marketplace.ts'
import { testDatabase } from './support/postgres.ts'
import { type ProviderProcess, spawnProviderNode } from './support/provider-process.ts'

type Node = ProviderProcess & { name: string }

let m: Marketplace
let db: Awaited<ReturnType<typeof testDatabase>>
let sql: Sql
let dir: string
let front: Awaited<ReturnType<typeof startRoundRobin>>
const nodes = new Map<string, Node>()
let provider: Address
let users: ZgWalletClients[]
let tokens: Map<ZgWalletClients, string>
let balancesBefore: bigint[]
let firstBlock: bigint
/** Res keys of the calls whose answer a client received whole. */
const delivered = new Set<string>()

/** Starts node `name` on the shared store; A names it with --store, B through ZG_STORE_URL (both ways work). */
async function serveNode(name: string): Promise<Node> {
  const node = await spawnProviderNode(m, {
    backends: [m.backend.url],
    dataDir: join(dir, name),
    settleInterval: 1,
    args: name === 'a' ? ['--store', db.url] : [],
    env: name === 'a' ? {} : { ZG_STORE_URL: db.url },
  })
  const named = { name, ...node }
  nodes.set(name, named)
  return named
}

/** One call through the front; `complete` when the client got the whole answer (JSON parsed, or a stream's [DONE]). */
async function call(who: ZgWalletClients, i: number): Promise<{ status: number; resKey?: string; complete: boolean }> {
  const stream = i % 3 === 0
  try {
    const res = await fetch(`${front.url}/v1/proxy/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.get(who)}` },
      body: JSON.stringify({
        model: DEV_CHAT_MODEL,
        messages: [{ role: 'user', content: `call ${i}` }],
        max_tokens: 6 + (i % 5),
        stream,
      }),
    })
    const text = await res.text()
    const resKey = res.headers.get('zg-res-key') ?? undefined
    let complete = res.status === 200
    if (complete && stream) complete = text.trimEnd().endsWith('data: [DONE]')
    else if (complete) complete = Boolean((JSON.parse(text) as { choices?: unknown[] }).choices?.length)
    if (complete && resKey) delivered.add(resKey)
    return { status: res.status, resKey, complete }
  } catch {
    return { status: 0, complete: false }
  }
}

/** `count` calls, `concurrency` at a time, spread over the users; `after(n)` runs once n of them have ended. */
async function load(count: number, concurrency: number, after?: { n: number; run: () => void }) {
  const results: Awaited<ReturnType<typeof call>>[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++
        results.push(await call(users[i % users.length]!, i))
        if (after && results.length === after.n) after.run()
      }
    }),
  )
  return results
}

const SETTLEMENT_LOCK = () => `zg-provider-settlement:${provider.toLowerCase()}`

async function subBalances(): Promise<bigint[]> {
  return Promise.all(
    users.map(async (u) => (await getAccount(u, { user: u.walletClient.account.address, provider }))!.balance),
  )
}

async function until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > end) {
      const logs = [...nodes.values()].map((n) => `--- ${n.name}\n${n.output().slice(-3000)}`).join('\n')
      throw new Error(`timed out waiting for ${what}\n${logs}`)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
}

beforeAll(async () => {
  ;[m, db] = await Promise.all([startMarketplace({ startNode: false }), testDatabase()])
  sql = connectPostgres(db.url, { max: 4 })
  dir = mkdtempSync(join(tmpdir(), 'zg-provider-instances-'))
  provider = m.provider.walletClient.account.address
  // One TEE signer for the service: the same dev key file in each node's data dir.
  for (const name of ['a', 'b']) {
    const keyDir = join(dir, name, `provider-${provider.toLowerCase()}`)
    mkdirSync(keyDir, { recursive: true })
    copyFileSync(join(m.dataDir, 'signer.key'), join(keyDir, 'tee-signer.key'))
  }
  // Started together: both migrate the empty database at once.
  const [a, b] = await Promise.all([serveNode('a'), serveNode('b')])
  front = await startRoundRobin({ upstreams: () => [...nodes.values()].map((n) => n.url), port: 0 })
  await m.register(front.url, m.signer.address)
  for (const n of [a, b]) {
    const h = (await (await fetch(`${n.url}/health`)).json()) as { signer: string }
    expect(h.signer).toBe(m.signer.address)
  }
  const second = m.clientsOf(3)
  await m.fund(second)
  users = [m.user, second]
  tokens = new Map(await Promise.all(users.map(async (u) => [u, await m.token(u)] as const)))
  balancesBefore = await subBalances()
  firstBlock = await m.provider.publicClient.getBlockNumber()
}, 180_000)

afterAll(async () => {
  for (const n of nodes.values()) n.proc.kill('SIGKILL')
  await front?.close()
  await sql?.end({ timeout: 5 })
  await db?.dispose()
  await m?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('two provider nodes of one service on one Postgres', () => {
  it('serves many calls over both nodes; kill -9 of one mid-load: the other serves on, no delivered record lost', async () => {
    const warm = await load(40, 8)
    expect(warm.every((r) => r.status === 200 && r.complete)).toBe(true)
    // Both nodes served (the front alternates), and wrote to the one store.
    const byNode = await sql`SELECT count(*)::int AS n FROM provider_requests`
    expect(byNode[0]!.n).toBeGreaterThanOrEqual(40)

    const a = nodes.get('a')!
    const results = await load(120, 8, {
      n: 30,
      run: () => {
        a.proc.kill('SIGKILL')
        nodes.delete('a')
      },
    })
    const ok = results.filter((r) => r.complete)
    // Only the calls A had in flight when it died may fail; every later one goes to B.
    expect(results.length - ok.length).toBeLessThanOrEqual(8)
    expect(ok.length).toBeGreaterThanOrEqual(100)
    expect(results.slice(-40).every((r) => r.complete)).toBe(true)

    const rows = await sql`SELECT res_key FROM provider_requests`
    const recorded = new Set(rows.map((r) => r.res_key as string))
    for (const key of delivered) expect(recorded.has(key)).toBe(true)
    // A record without a delivered answer can only be one A committed just before it died (at most its in-flight).
    expect(recorded.size - delivered.size).toBeLessThanOrEqual(8)
  }, 180_000)

  it('settles on one node at a time: every record exactly once, and the chain moved exactly their fees', async () => {
    await serveNode('a')
    // The test takes the settlement lock itself: while it holds it, neither node may settle anything.
    const lock = await sql.reserve()
    try {
      await lock`SELECT pg_advisory_lock(hashtextextended(${SETTLEMENT_LOCK()}, 0))`
      const before = (await sql`SELECT count(*)::int AS n FROM provider_settlements`)[0]!.n as number
      const more = await load(20, 4)
      expect(more.every((r) => r.complete)).toBe(true)
      await until('both nodes skipping a settlement run', async () =>
        [...nodes.values()].every((n) => /another node of this provider is settling now/.test(n.output())),
      )
      expect((await sql`SELECT count(*)::int AS n FROM provider_settlements`)[0]!.n).toBe(before)
    } finally {
      await lock`SELECT pg_advisory_unlock(hashtextextended(${SETTLEMENT_LOCK()}, 0))`
      lock.release()
    }

    await until(
      'every record settled',
      async () =>
        (await sql`SELECT count(*)::int AS n FROM provider_requests WHERE NOT settled`)[0]!.n === 0 &&
        (await sql`SELECT count(*)::int AS n FROM provider_settlements WHERE status IN ('pending', 'sent')`)[0]!.n ===
          0,
    )

    // Exactly once: each record belongs to one settled settlement, and those settlements add up to the records.
    const records = await sql`
      SELECT r.res_key, r.fee::text AS fee, s.status, s.id::int AS settlement
        FROM provider_requests r LEFT JOIN provider_settlements s ON s.id = r.settlement_id`
    expect(records.length).toBeGreaterThanOrEqual(delivered.size)
    expect(records.every((r) => r.status === 'settled')).toBe(true)
    const feeSum = records.reduce((s, r) => s + BigInt(r.fee as string), 0n)
    const settled = await sql`
      SELECT id::int AS id, total_fee::text AS total_fee, tx_hash, node
        FROM provider_settlements WHERE status = 'settled' ORDER BY id`
    expect(settled.reduce((s, r) => s + BigInt(r.total_fee as string), 0n)).toBe(feeSum)
    expect(new Set(records.map((r) => r.settlement)).size).toBe(settled.length)

    // Claimed by the nodes of this service only (the one that died included, perhaps).
    for (const r of settled) expect(String(r.node)).toMatch(/:\d+$/)

    // On chain: the users' sub-accounts paid exactly the records' fees, per the contract's own settlement events.
    const after = await subBalances()
    const paid = balancesBefore.reduce((s, b, i) => s + (b - after[i]!), 0n)
    expect(paid).toBe(feeSum)
    const { publicClient } = m.provider
    const last = await publicClient.getBlockNumber()
    const nonces: number[] = []
    for (let n = firstBlock + 1n; n <= last; n++) {
      const block = await publicClient.getBlock({ blockNumber: n, includeTransactions: true })
      for (const tx of block.transactions) {
        if (tx.from.toLowerCase() !== provider.toLowerCase()) continue
        const receipt = await publicClient.getTransactionReceipt({ hash: tx.hash })
        expect(receipt.status).toBe('success')
        nonces.push(tx.nonce)
        const results = parseEventLogs({
          abi: inferenceServingAbi,
          eventName: 'TEESettlementResult',
          logs: receipt.logs,
        })
        // Any result the contract reports for a user is a success (0): no settlement was refused, none partial.
        for (const r of results) expect(r.args.status).toBe(0)
      }
    }
    expect(new Set(nonces).size).toBe(nonces.length)
    expect(new Set(settled.map((r) => r.tx_hash)).size).toBe(nonces.length)
    for (const n of nodes.values()) expect(n.output()).not.toMatch(/nonce too low|replacement transaction/i)
    console.log(
      `provider-instances: ${records.length} records (${delivered.size} delivered whole), ${settled.length} settlements in ${nonces.length} transactions by ${new Set(settled.map((r) => r.node)).size} node(s); ${feeSum} neuron settled`,
    )
  }, 240_000)
})
