import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Address, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createInsecureDevSigner } from '../src/attestation/dev-signer.ts'
import type { TeeSigner } from '../src/attestation/tee-signer.ts'
import type { UsageLedger } from '../src/billing/usage-ledger.ts'
import { acknowledgeTEESignerByOwner } from '../src/chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addOrUpdateService } from '../src/chain/actions/add-or-update-service.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { transferFund } from '../src/chain/actions/transfer-fund.ts'
import type { ZgWalletClients } from '../src/chain/clients.ts'
import { anvilAccount, anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL, DEV_EMBEDDING_MODEL } from '../src/devnet/backends/index.ts'
import { type Gateway, startGateway } from '../src/gateway/server.ts'
import { type ProviderNode, startProviderNode } from '../src/provider-node/server.ts'
import { type Marketplace, PRICES, startMarketplace } from './support/marketplace.ts'
import { chainArgsOf } from './support/provider-process.ts'

const run = promisify(execFile)
const API_KEY = 'sk-test-reconciliation'
const ADMIN_KEY = 'sk-test-reconciliation-admin'
/** What the over-charging node adds to every call it records (test-only node setting). */
const EXTRA = 1_234n

let m: Marketplace
let embedder: ZgWalletClients
let embedSigner: TeeSigner
let embedNode: ProviderNode
let gateway: Gateway
const logs: string[] = []

const chatProvider = () => m.provider.walletClient.account.address
const embedProvider = () => embedder.walletClient.account.address

function startEmbedNode(port: number, testExtraFeePerCall?: bigint) {
  return startProviderNode({
    clients: embedder,
    backendUrl: m.backend.url,
    signer: embedSigner,
    // Its own store per run: the over-charging run starts with nothing unsettled (the honest run settled it all).
    dataDir: join(m.dataDir, testExtraFeePerCall ? 'embedder-over' : 'embedder'),
    port,
    settleIntervalMs: 0,
    accountCacheTtlMs: 300,
    testExtraFeePerCall,
    log: () => {},
  })
}

beforeAll(async () => {
  m = await startMarketplace()
  // A second provider, for embeddings, with its own node, signer and funded sub-account.
  embedder = m.clientsOf(3)
  embedSigner = await createInsecureDevSigner({ keyFile: join(m.dataDir, 'embed-signer.key') })
  embedNode = await startEmbedNode(0)
  await addOrUpdateService(embedder, {
    service: {
      serviceType: 'embedding',
      url: embedNode.url,
      model: DEV_EMBEDDING_MODEL,
      verifiability: 'TeeML',
      ...PRICES,
      additionalInfo: JSON.stringify({ TEEVerifier: 'insecure-dev', TargetSeparated: false }),
      teeSignerAddress: embedSigner.address,
    },
    stake: parseEther('100'),
  })
  await acknowledgeTEESignerByOwner(m.owner, { provider: embedProvider() })
  await transferFund(m.user, { provider: embedProvider(), amount: parseEther('5') })
  gateway = await startGateway({
    network: m.network,
    wallet: anvilAccount(1),
    dataDir: join(m.dataDir, 'gateway'),
    port: 0,
    apiKeys: [API_KEY],
    adminKey: ADMIN_KEY,
    allowPrivateUrls: true,
    autoFund: false,
    // Rounds on demand here (?refresh=true); the calls are all recorded before each.
    reconciliation: { intervalMs: 3_600_000, ledgerLagMs: 0 },
    log: (line) => logs.push(line),
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await embedNode?.close()
  await m?.stop()
})

async function post(path: string, body: unknown) {
  const res = await fetch(`${gateway.url}/v1/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  expect(res.status, text).toBe(200)
  return text
}

const chat = (content: string, stream: boolean) =>
  post('chat/completions', { model: DEV_CHAT_MODEL, messages: [{ role: 'user', content }], stream })
const embed = (input: string) => post('embeddings', { model: DEV_EMBEDDING_MODEL, input })

/** Waits until the ledger holds `count` calls, every one checked (verification no longer pending). */
async function ledgerSettles(count: number) {
  for (let i = 0; i < 200; i++) {
    const calls = await gateway.core.ledger.calls()
    if (calls.length >= count && calls.every((c) => c.verification !== 'pending')) return calls
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`the ledger did not reach ${count} checked calls`)
}

type Row = Record<string, string | number | boolean | null>
async function reconciliation(): Promise<{ rows: Row[]; flagged: Row[] }> {
  const res = await fetch(`${gateway.url}/admin/reconciliation?refresh=true`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  })
  expect(res.status).toBe(200)
  return (await res.json()) as { rows: Row[]; flagged: Row[] }
}

const rowOf = (r: { rows: Row[] }, provider: Address) => r.rows.find((x) => x.provider === provider)!
const recordedFor = (provider: Address) =>
  (gateway.core.ledger as UsageLedger).feesByProvider().find((f) => f.provider === provider.toLowerCase())!
const balanceWith = async (provider: Address) =>
  (await getAccount(m.user, { user: m.user.walletClient.account.address, provider }))!.balance

describe('reconciliation of on-chain charges with the gateway ledger (anvil, real contracts, real nodes)', () => {
  it('after a mixed batch and a settlement, the chain moved exactly what the ledger recorded, and no difference', async () => {
    await chat('Hello, honest provider', false)
    await chat('Stream me something', true)
    await chat('And once more, in full', false)
    await chat('Another stream please', true)
    await embed('embed this sentence')
    await embed('and this one as well')
    const calls = await ledgerSettles(6)
    expect(calls.every((c) => c.fee > 0n && c.verification === 'verified')).toBe(true)

    // Before settlement the providers' unsettled fees carry the whole charge.
    let report = await reconciliation()
    for (const p of [chatProvider(), embedProvider()]) {
      expect(rowOf(report, p)).toMatchObject({
        settled: '0',
        unsettled: recordedFor(p).fee.toString(),
        difference: '0',
      })
    }

    const before = { chat: await balanceWith(chatProvider()), embed: await balanceWith(embedProvider()) }
    const outcomes = [...(await m.node.settle()), ...(await embedNode.settle())]
    expect(outcomes.map((o) => o.status)).toEqual(['SUCCESS', 'SUCCESS'])
    const moved = {
      chat: before.chat - (await balanceWith(chatProvider())),
      embed: before.embed - (await balanceWith(embedProvider())),
    }
    // To the neuron: what left the sub-account is what the gateway recorded for that provider.
    expect(moved.chat).toBe(recordedFor(chatProvider()).fee)
    expect(moved.embed).toBe(recordedFor(embedProvider()).fee)

    report = await reconciliation()
    expect(report.flagged).toEqual([])
    for (const [p, amount] of [
      [chatProvider(), moved.chat],
      [embedProvider(), moved.embed],
    ] as const) {
      expect(rowOf(report, p)).toMatchObject({
        settled: amount.toString(),
        settlements: 1,
        // The gateway's scan began at the head after the sub-accounts were funded, from their balances there.
        unknownSettlements: 0,
        unsettled: '0',
        charged: amount.toString(),
        recorded: amount.toString(),
        recordedVerified: amount.toString(),
        difference: '0',
        flagged: false,
      })
    }
    expect(logs.filter((l) => l.startsWith('reconciliation:'))).toEqual([])
  })

  it('flags a provider node that over-charges, with the figures, before and after it settles, logged once', async () => {
    // The embedding node restarts on its port with the test-only over-charge.
    const port = embedNode.port
    await embedNode.close()
    embedNode = await startEmbedNode(port, EXTRA)
    const honest = recordedFor(embedProvider()).fee
    for (const text of ['one', 'two', 'three']) await embed(`over-charged ${text}`)
    await ledgerSettles(9)
    const recorded = recordedFor(embedProvider()).fee
    const over = 3n * EXTRA

    let report = await reconciliation()
    expect(rowOf(report, embedProvider())).toMatchObject({
      settled: honest.toString(),
      unsettled: (recorded - honest + over).toString(),
      recorded: recorded.toString(),
      difference: over.toString(),
      flagged: true,
    })
    expect(report.flagged.map((r) => r.provider)).toEqual([embedProvider()])
    expect(rowOf(report, chatProvider())).toMatchObject({ difference: '0', flagged: false })

    const [outcome] = await embedNode.settle()
    expect(outcome).toMatchObject({ status: 'SUCCESS', settled: recorded - honest + over })
    report = await reconciliation()
    expect(rowOf(report, embedProvider())).toMatchObject({
      settled: (recorded + over).toString(),
      settlements: 2,
      unsettled: '0',
      charged: (recorded + over).toString(),
      recorded: recorded.toString(),
      difference: over.toString(),
      flagged: true,
    })
    const lines = logs.filter((l) => l.startsWith('reconciliation:'))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(`provider ${embedProvider()} charged ${recorded + over} neuron`)
    expect(lines[0]).toContain(`${over} over`)
  })

  it('zg-gateway usage --reconcile reports the same figures from the chain and usage.sqlite, exit 1 when flagged', async () => {
    const chainArgs = [...chainArgsOf(m), '--data-dir', m.dataDir]
    let out: { code: number; stdout: string; stderr: string }
    try {
      const r = await run(process.execPath, ['bin/zg-gateway.js', 'usage', '--reconcile', '--json', ...chainArgs], {
        env: { PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(1) },
      })
      out = { code: 0, ...r }
    } catch (err) {
      out = err as { code: number; stdout: string; stderr: string }
    }
    expect(out.code, out.stderr).toBe(1)
    const report = JSON.parse(out.stdout) as { rows: Row[]; flagged: Row[] }
    const gatewayView = await reconciliation()
    expect(report.rows).toEqual(gatewayView.rows)
    expect(report.flagged.map((r) => r.provider)).toEqual([embedProvider()])

    const text = await run(process.execPath, ['bin/zg-gateway.js', 'usage', '--reconcile', ...chainArgs], {
      env: { PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(1) },
    }).catch((err: { code: number; stdout: string }) => err)
    expect((text as { code?: number }).code).toBe(1)
    expect(text.stdout).toContain(
      `Provider ${embedProvider()} charged ${3n * EXTRA} neuron more than the gateway recorded.`,
    )
    expect(text.stdout).toMatch(/OVER/)
  })
})
