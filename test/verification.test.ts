import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Address, type Hex, recoverMessageAddress, verifyMessage } from 'viem'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { anvilAccount } from '../src/devnet/anvil.ts'
import {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
} from '../src/devnet/backends/index.ts'
import { DEV_ADMIN_KEY } from '../src/devnet/dev-stack.ts'
import { type Gateway, startGateway } from '../src/gateway/server.ts'
import { type ProviderNode, startProviderNode } from '../src/provider-node/server.ts'
import { startTestStack } from './support/dev-stack.ts'
import { type Marketplace, startMarketplace } from './support/marketplace.ts'
import { toneWav } from './support/wav.ts'

const run = promisify(execFile)
const KEY = 'sk-zg-dev'

type Receipt = {
  id: string
  verification: { status: string; level: string | null }
  signed: { format: string; payload: string; signature: Hex; gateway: Address } | null
}

/** The receipt once its check is done (signed then). */
async function finalReceipt(base: string, id: string, key = KEY): Promise<Receipt> {
  for (let i = 0; ; i++) {
    const res = await fetch(`${base}/receipts/${id}`, { headers: { authorization: `Bearer ${key}` } })
    expect(res.status).toBe(200)
    const body = (await res.json()) as Receipt
    if (body.verification.status !== 'pending' || i >= 400) return body
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function verifyReceiptCli(file: string, extra: string[] = []) {
  try {
    const { stdout } = await run(process.execPath, ['bin/zg-gateway.js', 'attest', 'verify-receipt', file, ...extra])
    return { code: 0, stdout }
  } catch (err) {
    const e = err as { code: number; stdout: string }
    return { code: e.code, stdout: e.stdout }
  }
}

describe('signed receipts on the devnet (every TEE provider, real processes)', () => {
  let stack: Awaited<ReturnType<typeof startTestStack>>
  beforeAll(async () => {
    stack = await startTestStack()
  }, 120_000)
  afterAll(async () => {
    await stack?.dispose()
  })

  const post = (path: string, body: unknown) => {
    const form = body instanceof FormData
    return fetch(`${stack.baseURL}/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, ...(form ? {} : { 'content-type': 'application/json' }) },
      body: form ? body : JSON.stringify(body),
    })
  }

  it('every response is L1 with a receipt the gateway signed, which verify-receipt accepts offline', async () => {
    const audio = new FormData()
    const wav = new Uint8Array(toneWav([{ hz: 440, seconds: 0.3 }]))
    audio.append('file', new Blob([wav], { type: 'audio/wav' }), 'a.wav')
    audio.append('model', DEV_STT_MODEL)
    const chat = { model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'a receipt please' }] }
    const answers = await Promise.all([
      post('chat/completions', chat),
      post('chat/completions', { ...chat, stream: true }),
      post('embeddings', { model: DEV_EMBEDDING_MODEL, input: 'receipt' }),
      post('images/generations', { model: DEV_IMAGE_MODEL, prompt: 'a receipt' }),
      post('audio/transcriptions', audio),
      post('audio/speech', { model: DEV_TTS_MODEL, voice: 'nova', input: 'Receipt.', response_format: 'wav' }),
    ])
    const gateway = stack.gateway.core.receiptSigner!.address
    for (const res of answers) {
      expect(res.status, await res.clone().text()).toBe(200)
      await res.arrayBuffer()
      // The level is known when the headers leave: these providers' signers are acknowledged on-chain.
      expect(res.headers.get('x-zg-verification')).toBe('L1')
      const id = res.headers.get('x-request-id')!
      expect(res.headers.get('x-zg-receipt')).toBe(`/v1/receipts/${id}`)
      const receipt = await finalReceipt(stack.baseURL, id)
      expect(receipt.verification, id).toMatchObject({ status: 'verified', level: 'L1' })
      expect(receipt.signed?.gateway).toBe(gateway)
      const payload = JSON.parse(receipt.signed!.payload)
      expect(payload).toMatchObject({
        format: 'zg-receipt-v1',
        request_id: id,
        provider: res.headers.get('x-zg-provider'),
        status: 'verified',
        level: 'L1',
        block_number: expect.stringMatching(/^\d+$/),
      })
      expect(payload.request_sha256).toMatch(/^[0-9a-f]{64}$/)
      expect(payload.provider_signature).toMatch(/^0x[0-9a-fA-F]{130}$/)
    }

    // The whole receipt as served, to a file, checked by the CLI with nothing but the file.
    const id = answers[0]!.headers.get('x-request-id')!
    const receipt = await finalReceipt(stack.baseURL, id)
    const file = join(stack.dataDir, 'receipt.json')
    writeFileSync(file, JSON.stringify(receipt))
    const ok = await verifyReceiptCli(file, ['--gateway', gateway])
    expect(ok.code, ok.stdout).toBe(0)
    expect(ok.stdout).toContain(`valid receipt ${id}, signed by the gateway ${gateway}`)
    expect(ok.stdout).toMatch(/status verified, level L1; provider signature valid/)

    // The docs' viem-only check (docs/verification.md), as written there.
    const r = receipt.signed!
    const valid = await verifyMessage({ address: r.gateway, message: r.payload, signature: r.signature })
    const p = JSON.parse(r.payload)
    const signer = await recoverMessageAddress({
      message: `${p.request_sha256}:${p.response_sha256}`,
      signature: p.provider_signature,
    })
    expect(valid && signer === p.signer).toBe(true)

    // One changed byte anywhere in what was signed is refused.
    const tampered = { ...r, payload: r.payload.replace(`"fee":"${p.fee}"`, `"fee":"${BigInt(p.fee) + 1n}"`) }
    expect(tampered.payload).not.toBe(r.payload)
    writeFileSync(file, JSON.stringify(tampered))
    const refused = await verifyReceiptCli(file)
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(/^INVALID: signed by 0x[0-9a-fA-F]{40}, not by the gateway it names/)
    // And a receipt signed by another gateway than the one expected.
    writeFileSync(file, JSON.stringify(r))
    const other = await verifyReceiptCli(file, ['--gateway', anvilAccount(7).address])
    expect(other.code).toBe(1)
    expect(other.stdout).toMatch(/not by the expected gateway/)
  }, 60_000)

  it('x-zg-min-verification and x-0g-provider-trust-mode choose who may serve, and say why nobody can', async () => {
    const ask = (headers: Record<string, string>) =>
      fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'who may answer?' }] }),
      })
    const tee = stack.nodes.find((n) => n.spec.name === 'chat-tee')!.address
    // TEE only (0G Router's privacy mode) and L1: the TEE provider, whatever the router would have preferred.
    const choices: Record<string, string>[] = [
      { 'x-0g-provider-trust-mode': 'private' },
      { 'x-zg-min-verification': 'L1' },
    ]
    for (const headers of choices) {
      const res = await ask(headers)
      expect(res.status).toBe(200)
      expect(res.headers.get('x-zg-provider')).toBe(tee)
    }
    // L2 needs an attested signer: the gateway asks each provider for its report, and a dev signer has no TDX quote.
    const l2 = await ask({ 'x-zg-min-verification': 'L2' })
    expect(l2.status).toBe(503)
    const { error } = (await l2.json()) as { error: Record<string, string> }
    expect(error.code).toBe('no_provider_available')
    expect(error.message).toContain(`No provider of ${DEV_CHAT_MODEL} offers verification L2`)
    expect(error.message).toMatch(new RegExp(`${tee} reached L1 \\(.*not.*TEE`, 'i'))
    expect(error.message).toMatch(/ reached none/)
    // What it cannot read is a 400 naming the header, before anything is paid.
    const bad = await ask({ 'x-zg-min-verification': 'L9' })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: Record<string, string> }).error).toMatchObject({
      code: 'invalid_header',
      param: 'x-zg-min-verification',
    })
  })

  it('a provider that does not sign answers with none, and its receipt says unverifiable', async () => {
    const tee = stack.nodes.find((n) => n.spec.name === 'chat-tee')!.address
    stack.gateway.core.router.setFlagged(tee, true)
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'unsigned' }] }),
    }).finally(() => stack.gateway.core.router.setFlagged(tee, false))
    expect(res.status).toBe(200)
    expect(res.headers.get('x-zg-provider')).toBe(stack.nodes.find((n) => n.spec.name === 'chat-standard')!.address)
    expect(res.headers.get('x-zg-verification')).toBe('none')
    const id = res.headers.get('x-request-id')!
    const admin = await finalReceipt(`${stack.gateway.url}/admin`, id, DEV_ADMIN_KEY)
    expect(admin.verification.status).toBe('unverifiable')
  })
})

describe('a provider that signs other bytes than it sent', () => {
  let m: Marketplace
  let node: ProviderNode
  let gateway: Gateway
  beforeAll(async () => {
    m = await startMarketplace({ startNode: false })
    node = await startProviderNode({
      clients: m.provider,
      backendUrl: m.backend.url,
      signer: m.signer,
      dataDir: join(m.dataDir, 'liar'),
      port: 0,
      settleIntervalMs: 0,
      accountCacheTtlMs: 300,
      testSignOtherBytes: true,
      log: () => {},
    })
    await m.register(node.url, m.signer.address)
    gateway = await startGateway({
      network: m.network,
      wallet: anvilAccount(1),
      dataDir: join(m.dataDir, 'gateway'),
      port: 0,
      apiKeys: [KEY],
      allowPrivateUrls: true,
      funding: { intervalMs: 0 },
      reconciliation: false,
      log: () => {},
    })
  }, 60_000)
  afterAll(async () => {
    await gateway?.close()
    await node?.close()
    await m?.stop()
  })

  it('yields disputed records with signed receipts, and loses its funding and its traffic', async () => {
    const provider = m.provider.walletClient.account.address
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: DEV_CHAT_MODEL,
          messages: [{ role: 'user', content: `lie ${i}` }],
          stream: i === 1,
        }),
      })
      expect(res.status).toBe(200)
      await res.text()
      ids.push(res.headers.get('x-request-id')!)
    }
    for (const id of ids) {
      const receipt = await finalReceipt(`${gateway.url}/v1`, id)
      expect(receipt.verification).toMatchObject({ status: 'disputed', level: null })
      const payload = JSON.parse(receipt.signed!.payload)
      expect(payload).toMatchObject({ status: 'disputed', level: null })
      // The provider's own signature is kept as the evidence; it does not cover what was delivered.
      const recovered = await recoverMessageAddress({
        message: `${payload.request_sha256}:${payload.response_sha256}`,
        signature: payload.provider_signature,
      })
      expect(recovered).not.toBe(payload.signer)
    }
    // Never funded from it: no verified credit, stopped at the third dispute, its sub-account's refund started.
    await vi.waitFor(() => expect(gateway.core.escrow!.isStopped(provider)).toBe(true), { timeout: 10_000 })
    const status = gateway.core.escrow!.status().find((s) => s.provider === provider)!
    expect(status).toMatchObject({ disputed: 3, credit: 0n, verified: 0n })
    await vi.waitFor(
      async () => {
        const account = await getAccount(m.user, { user: m.user.walletClient.account.address, provider })
        expect(account!.pendingRefund).toBeGreaterThan(0n)
      },
      { timeout: 10_000 },
    )
    const next = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'again?' }] }),
    })
    expect(next.status).toBe(503)
    expect(((await next.json()) as { error: { message: string } }).error.message).toMatch(/set aside/)
  }, 60_000)
})
