import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { type Address, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createInsecureDevSigner } from '../src/attestation/dev-signer.ts'
import { verifyResponseSignature } from '../src/attestation/response-signature.ts'
import type { TeeSigner } from '../src/attestation/tee-signer.ts'
import { wavDurationSeconds } from '../src/billing/audio-duration.ts'
import { acknowledgeTEESignerByOwner } from '../src/chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addLedger } from '../src/chain/actions/add-ledger.ts'
import { addOrUpdateService } from '../src/chain/actions/add-or-update-service.ts'
import { depositFund } from '../src/chain/actions/deposit-fund.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { transferFund } from '../src/chain/actions/transfer-fund.ts'
import type { ZgWalletClients } from '../src/chain/clients.ts'
import {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
} from '../src/devnet/backends/index.ts'
import { encodePng } from '../src/devnet/backends/png.ts'
import { type ProviderNode, startProviderNode } from '../src/provider-node/server.ts'
import { json } from './support/json.ts'
import { type Marketplace, PRICES, startMarketplace } from './support/marketplace.ts'
import { toneWav } from './support/wav.ts'

let m: Marketplace
/** The node's JSON body limit here: under the size the server reads early (1 MiB), so both ways of reading meet it. */
const LIMIT = 256 * 1024

beforeAll(async () => {
  m = await startMarketplace({ jsonBodyLimit: LIMIT })
})
afterAll(async () => {
  await m?.stop()
})

async function chat(body: Record<string, unknown>, token?: string, headers: Record<string, string> = {}) {
  const requestBody = JSON.stringify({
    model: DEV_CHAT_MODEL,
    messages: [{ role: 'user', content: 'Hello there, provider' }],
    ...body,
  })
  const res = await fetch(`${m.node.url}/v1/proxy/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token ?? (await m.token())}`, ...headers },
    body: requestBody,
  })
  return { res, requestBody, text: await res.text() }
}

async function signatureOf(key: string) {
  const res = await fetch(`${m.node.url}/v1/proxy/signature/${key}`)
  expect(res.status).toBe(200)
  return json(res)
}

describe('provider node: serving, signing, metering', () => {
  it('serves a chat completion, signs the exact bytes, and records the fee from usage', async () => {
    const { res, requestBody, text } = await chat({})
    expect(res.status).toBe(200)
    const key = res.headers.get('zg-res-key')!
    expect(key).toMatch(/^[0-9a-f-]{36}$/)
    const body = JSON.parse(text)
    const sig = await signatureOf(key)
    expect(sig).toMatchObject({ signing_address: m.signer.address, signing_algo: 'ecdsa' })
    // Sent along with the answer too (no second round trip), and the same one the signature route serves.
    expect(res.headers.get('zg-res-signature')).toBe(sig.signature)
    expect(
      await verifyResponseSignature({
        signature: sig,
        expectedSigner: m.signer.address,
        requestBody,
        responseBody: text,
      }),
    ).toEqual({ ok: true })
    const record = m.node.store.records().find((r) => r.resKey === key)!
    const expected =
      BigInt(body.usage.prompt_tokens) * PRICES.inputPrice + BigInt(body.usage.completion_tokens) * PRICES.outputPrice
    expect(record.fee).toBe(expected)
    expect(record.inputCount).toBe(BigInt(body.usage.prompt_tokens))
  })

  it('bills a stream from usage it asked for, without showing the client a usage chunk it did not ask for', async () => {
    const { res, requestBody, text } = await chat({ stream: true })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    expect(text).not.toMatch(/"usage":\{/)
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true)
    const key = res.headers.get('zg-res-key')!
    // A stream's signature only exists after its last byte: not a header, but a trailer (below) and served.
    expect(res.headers.get('zg-res-signature')).toBeNull()
    // Written straight to the Node response, it still carries what the CORS middleware adds.
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    expect(res.headers.get('access-control-expose-headers')).toContain('ZG-Res-Signature')
    const record = m.node.store.records().find((r) => r.resKey === key)
    expect(record?.fee).toBeGreaterThan(0n)
    const sig = await signatureOf(key)
    expect(
      await verifyResponseSignature({
        signature: sig,
        expectedSigner: m.signer.address,
        requestBody,
        responseBody: text,
      }),
    ).toEqual({ ok: true })
  })

  it("sends a stream's signature as a trailer once its last byte is signed, the same one it serves", async () => {
    const requestBody = JSON.stringify({
      model: DEV_CHAT_MODEL,
      messages: [{ role: 'user', content: 'trailer' }],
      stream: true,
    })
    const res = await request(`${m.node.url}/v1/proxy/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` },
      body: requestBody,
    })
    expect(res.headers.trailer).toBe('ZG-Res-Signature')
    const text = await res.body.text()
    const sent = res.trailers['zg-res-signature']
    expect(sent).toMatch(/^0x[0-9a-f]{130}$/)
    const served = await signatureOf(String(res.headers['zg-res-key']))
    expect(sent).toBe(served.signature)
    expect(
      await verifyResponseSignature({
        signature: { ...served, signature: sent as `0x${string}` },
        expectedSigner: m.signer.address,
        requestBody,
        responseBody: text,
      }),
    ).toEqual({ ok: true })
  })

  it('shows the usage chunk when the client asked for it', async () => {
    const { text, res } = await chat({ stream: true, stream_options: { include_usage: true } })
    const events = text.split('\n\n').filter((e) => e.startsWith('data: {'))
    const last = JSON.parse(events.at(-1)!.slice(6))
    expect(last.choices).toEqual([])
    const record = m.node.store.records().find((r) => r.resKey === res.headers.get('zg-res-key'))!
    expect(record.inputCount).toBe(BigInt(last.usage.prompt_tokens))
    expect(record.outputCount).toBe(BigInt(last.usage.completion_tokens))
  })

  it('reports the unsettled fee to its own user only', async () => {
    const me = m.user.walletClient.account.address
    const res = await fetch(`${m.node.url}/v1/user/${me}/unsettledfee`, {
      headers: { authorization: `Bearer ${await m.token()}` },
    })
    const body = await json(res)
    expect(body.unsettledFee).toBe(m.node.store.unsettledFee(me).toString())
    expect(BigInt(body.unsettledFee)).toBeGreaterThan(0n)
    const other = await fetch(`${m.node.url}/v1/user/${m.owner.walletClient.account.address}/unsettledfee`, {
      headers: { authorization: `Bearer ${await m.token()}` },
    })
    expect(other.status).toBe(403)
  })

  it('lists its model with prices, and serves an attestation that says plainly it is not a TEE', async () => {
    const models = await json(await fetch(`${m.node.url}/v1/models`))
    expect(models.data[0]).toMatchObject({
      id: DEV_CHAT_MODEL,
      pricing: { input_price: PRICES.inputPrice.toString(), output_price: PRICES.outputPrice.toString() },
      tee_attested: false,
    })
    const quote = await json(await fetch(`${m.node.url}/v1/quote`))
    expect(quote).toMatchObject({ tee: 'none', insecure: true, quote: null, signing_address: m.signer.address })
  })
})

describe('provider node: other endpoints and their billing units', () => {
  const call = async (endpoint: string, init: { body: string | FormData; contentType?: string }) => {
    const headers: Record<string, string> = { authorization: `Bearer ${await m.token()}` }
    if (init.contentType) headers['content-type'] = init.contentType
    const res = await fetch(`${m.node.url}/v1/proxy/${endpoint}`, { method: 'POST', headers, body: init.body })
    const record = m.node.store.records().find((r) => r.resKey === res.headers.get('zg-res-key'))
    return { res, record }
  }

  it('bills embeddings per input token', async () => {
    const { res, record } = await call('embeddings', {
      contentType: 'application/json',
      body: JSON.stringify({ model: DEV_EMBEDDING_MODEL, input: ['one text', 'another text'] }),
    })
    const body = await json(res)
    expect(body.data).toHaveLength(2)
    expect(record).toMatchObject({ inputCount: BigInt(body.usage.prompt_tokens), outputCount: 0n })
    expect(record!.fee).toBe(BigInt(body.usage.prompt_tokens) * PRICES.inputPrice)
  })

  it('bills images per image, at the output price', async () => {
    const { res, record } = await call('images/generations', {
      contentType: 'application/json',
      body: JSON.stringify({
        model: DEV_IMAGE_MODEL,
        prompt: 'a lighthouse',
        n: 2,
        size: '256x256',
        response_format: 'b64_json',
      }),
    })
    expect((await json(res)).data).toHaveLength(2)
    expect(record!.fee).toBe(2n * PRICES.outputPrice)
  })

  it('streams an audio upload through and bills its seconds, in JSON and in SRT', async () => {
    const wav = toneWav([
      { hz: 440, seconds: 1.2 },
      { hz: 0, seconds: 0.5 },
      { hz: 880, seconds: 1.3 },
    ])
    for (const format of ['json', 'srt']) {
      const form = new FormData()
      form.set('file', new Blob([wav], { type: 'audio/wav' }), 'tones.wav')
      form.set('model', DEV_STT_MODEL)
      form.set('response_format', format)
      const { res, record } = await call('audio/transcriptions', { body: form })
      expect(res.status).toBe(200)
      const text = await res.text()
      expect(text.length).toBeGreaterThan(0)
      expect(record).toMatchObject({ inputCount: 3n, fee: 3n * PRICES.inputPrice })
    }
  })
})

describe('provider node: settlement', () => {
  it('settles exactly the recorded fees on-chain, and a second settle moves nothing', async () => {
    for (let i = 0; i < 3; i++) await chat({ messages: [{ role: 'user', content: `request ${i}` }] })
    const user = m.user.walletClient.account.address
    const provider = m.provider.walletClient.account.address
    const owed = m.node.store.unsettledFee(user)
    const records = m.node.store.records({ settled: false }).length
    expect(owed).toBeGreaterThan(0n)
    const before = await getAccount(m.user, { user, provider })
    const walletBefore = await m.user.publicClient.getBalance({ address: provider })

    const outcomes = await m.node.settle()
    expect(outcomes).toEqual([expect.objectContaining({ user, status: 'SUCCESS', settled: owed, records })])
    const after = await getAccount(m.user, { user, provider })
    expect(before!.balance - after!.balance).toBe(owed)
    const receipt = await m.user.publicClient.getTransactionReceipt({ hash: outcomes[0]!.txHash! })
    const walletAfter = await m.user.publicClient.getBalance({ address: provider })
    expect(walletAfter - walletBefore).toBe(owed - receipt.gasUsed * receipt.effectiveGasPrice)
    expect(m.node.store.unsettledFee(user)).toBe(0n)

    expect(await m.node.settle()).toEqual([])
    expect((await getAccount(m.user, { user, provider }))!.balance).toBe(after!.balance)
  })
})

describe('provider node: refusals', () => {
  const refused = async (token: string | undefined, status: number, code: string | RegExp) => {
    const res = await fetch(`${m.node.url}/v1/proxy/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: token }) },
      body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    })
    const body = await json(res)
    expect({ status: res.status, code: body.error.code }).toEqual({ status, code: expect.stringMatching(code) })
    return body.error.message as string
  }
  const b64 = (s: string) => Buffer.from(s).toString('base64')

  it('answers browsers: CORS on every answer (proxied, refused, listed) and on a preflight', async () => {
    const { res } = await chat({}, 'app-sk-not-a-token')
    expect(res.status).toBe(401)
    const models = await fetch(`${m.node.url}/v1/models`)
    await models.text()
    const { res: ok } = await chat({})
    for (const r of [res, models, ok]) {
      expect(r.headers.get('access-control-allow-origin')).toBe('*')
      expect(r.headers.get('access-control-expose-headers')).toBe(
        'ZG-Res-Key,ZG-Res-Signature,Retry-After,X-0G-Audio-Duration-Seconds,X-0G-Fee,ZG-Audio-Duration-Source',
      )
    }
    const preflight = await fetch(`${m.node.url}/v1/proxy/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*')
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization')
  })

  it('refuses a JSON body over its limit with a 413, declared or chunked, and bills nothing', async () => {
    const before = m.node.store.records().length
    const big = JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'x'.repeat(LIMIT) }] })
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` }
    const url = `${m.node.url}/v1/proxy/chat/completions`
    const declared = await fetch(url, { method: 'POST', headers, body: big })
    const chunks = [Buffer.from(big.slice(0, 1000)), Buffer.from(big.slice(1000))]
    const chunked = await fetch(url, {
      method: 'POST',
      headers,
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift()
          if (next) controller.enqueue(next)
          else controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    for (const res of [declared, chunked]) {
      expect(res.status).toBe(413)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('request_too_large')
    }
    expect(m.node.store.records().length).toBe(before)
    // Just under the limit goes through to the backend (which finds it longer than its model's context: a 400).
    const fits = JSON.stringify({
      model: DEV_CHAT_MODEL,
      messages: [{ role: 'user', content: 'y'.repeat(LIMIT - 200) }],
    })
    const res = await fetch(url, { method: 'POST', headers, body: fits })
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('context_length_exceeded')
  })

  it('refuses a missing or malformed token', async () => {
    await refused(undefined, 401, /malformed/)
    await refused('Bearer sk-not-zero-g', 401, /malformed/)
    await refused(`Bearer app-sk-${b64('{"address":"0x1"}')}`, 401, /malformed/)
    await refused(`Bearer app-sk-!!!`, 401, /malformed/)
  })

  it('refuses a token for another provider', async () => {
    await refused(
      `Bearer ${await m.token(m.user, { provider: m.owner.walletClient.account.address })}`,
      401,
      /wrong_provider/,
    )
  })

  it('refuses an expired token and an ephemeral token longer than 24 h', async () => {
    await refused(
      `Bearer ${await m.token(m.user, { now: Date.now() - 3_600_000, lifetimeMs: 60_000 })}`,
      401,
      /expired/,
    )
    // Our own token builder refuses to make such a token, so this one is signed by hand.
    const now = Date.now()
    const tooLong = await m.rawToken(m.user, { timestamp: now, expiresAt: now + 25 * 3_600_000 })
    await refused(`Bearer ${tooLong}`, 401, /ephemeral_too_long/)
  })

  it('refuses a token whose signature is not its address’s', async () => {
    const token = await m.token()
    const raw = Buffer.from(token.slice('app-sk-'.length), 'base64').toString()
    const [message, sig] = [raw.slice(0, raw.lastIndexOf('|')), raw.slice(raw.lastIndexOf('|') + 1)]
    // Another funded user's address with the user's signature: the account exists, the signature is not theirs.
    const victim = m.clientsOf(7)
    await m.fund(victim)
    const forged = message.replace(m.user.walletClient.account.address, victim.walletClient.account.address)
    await refused(`Bearer app-sk-${b64(`${forged}|${sig}`)}`, 401, /bad_signature/)
    const tampered = `${message}|${sig.slice(0, -4)}${sig.slice(-4) === 'aaaa' ? 'bbbb' : 'aaaa'}`
    await refused(`Bearer app-sk-${b64(tampered)}`, 401, /bad_signature/)
  })

  it('refuses a revoked persistent token id, and every token after a generation bump', async () => {
    const { revokeToken } = await import('../src/chain/actions/revoke-token.ts')
    const { revokeAllTokens } = await import('../src/chain/actions/revoke-all-tokens.ts')
    const who = m.clientsOf(4)
    await m.fund(who)
    const persistent = await m.token(who, { tokenId: 7, lifetimeMs: 3_600_000 })
    expect((await chat({}, persistent)).res.status).toBe(200)
    await revokeToken(who, { provider: m.provider.walletClient.account.address, tokenId: 7 })
    // The node trusts an account read for a short TTL (300 ms here): a revocation takes effect within it.
    await new Promise((r) => setTimeout(r, 400))
    await refused(`Bearer ${persistent}`, 401, /revoked/)

    const ephemeral = await m.token(who)
    expect((await chat({}, ephemeral)).res.status).toBe(200)
    await revokeAllTokens(who, { provider: m.provider.walletClient.account.address })
    await new Promise((r) => setTimeout(r, 400))
    await refused(`Bearer ${ephemeral}`, 401, /generation_mismatch/)
    expect((await chat({}, await m.token(who))).res.status).toBe(200)
  })

  it('refuses a user without a sub-account, and one whose balance does not cover the reserve', async () => {
    const stranger = m.clientsOf(5)
    await refused(`Bearer ${await m.token(stranger)}`, 403, /account_not_found/)
    const poor = m.clientsOf(6)
    await m.fund(poor, parseEther('3'), parseEther('1'))
    const message = await refused(`Bearer ${await m.token(poor)}`, 402, /insufficient_balance/)
    expect(message).toMatch(/^insufficient balance: your locked balance is 1 0G, but the required minimum is/)
    expect(m.node.store.unsettledFee(poor.walletClient.account.address)).toBe(0n)
  })

  it('ends a stream whose backend dies with an error event, and bills nothing it cannot account for', async () => {
    const before = m.node.store.records().length
    const { res, text } = await chat({ stream: true }, undefined, { 'x-dev-fault': 'die-mid-stream' })
    expect(res.status).toBe(200)
    expect(text).toMatch(/data: \{"error":\{.*"code":"upstream_error"/)
    expect(text).not.toContain('[DONE]')
    expect(m.node.store.records().length).toBe(before)
  })

  it('still ends a delivered stream properly, unsigned, when its record cannot be written', async () => {
    const failing = vi.spyOn(m.node.store, 'recordDelivery').mockImplementationOnce(() => {
      throw new Error('disk I/O error')
    })
    try {
      const res = await request(`${m.node.url}/v1/proxy/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` },
        body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'x' }], stream: true }),
      })
      expect((await res.body.text()).trimEnd().endsWith('data: [DONE]')).toBe(true)
      expect(res.trailers['zg-res-signature']).toBeUndefined()
      expect(failing).toHaveBeenCalledTimes(1)
    } finally {
      failing.mockRestore()
    }
    // The node goes on serving (no unhandled rejection took it down).
    const { res } = await chat({})
    expect(res.status).toBe(200)
  })

  it('answers with a 502 when its backend is down, and bills nothing', async () => {
    const { startProviderNode } = await import('../src/provider-node/server.ts')
    const dead = await startProviderNode({
      clients: m.provider,
      backendUrl: 'http://127.0.0.1:9',
      signer: m.signer,
      dataDir: join(m.dataDir, 'dead-backend'),
      settleIntervalMs: 0,
      log: () => {},
    })
    try {
      const res = await fetch(`${dead.url}/v1/proxy/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` },
        body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'anyone there?' }] }),
      })
      expect(res.status).toBe(502)
      expect((await json(res)).error).toMatchObject({ code: 'backend_unavailable', type: 'server_error' })
      expect(dead.store.records()).toEqual([])
    } finally {
      await dead.close()
    }
  })

  it('answers a backend failure before the first byte with a 502, and bills nothing', async () => {
    const before = m.node.store.records().length
    const { res, text } = await chat({}, undefined, { 'x-dev-fault': 'error-before' })
    expect(res.status).toBe(502)
    expect(JSON.parse(text).error.code).toBe('upstream_error')
    expect(m.node.store.records().length).toBe(before)
  })
})

describe('provider node: text-to-speech and image edits', () => {
  /** 0.01 0G per second of audio: a 120 s reservation is 1.2 0G, more than a 2 0G sub-account holds beside its reserve. */
  const SECOND = parseEther('0.01')
  const IMAGE = parseEther('0.02')
  type Media = { node: ProviderNode; signer: TeeSigner; address: Address }
  let speech: Media
  let adaptor: Media
  let edits: Media
  let adaptorBackend: ReturnType<typeof createServer>
  const logs: string[] = []

  /** A provider node of `serviceType` for anvil account `account`, registered and acknowledged on-chain. */
  async function mediaNode(
    account: number,
    service: { serviceType: string; model: string; outputPrice: bigint },
    backendUrl = m.backend.url,
    register = true,
  ): Promise<Media> {
    const clients = m.clientsOf(account)
    const address = clients.walletClient.account.address
    const signer = await createInsecureDevSigner({ keyFile: join(m.dataDir, `media-${account}.key`) })
    const node = await startProviderNode({
      clients,
      backendUrl,
      signer,
      dataDir: join(m.dataDir, `media-${account}-${register}`),
      settleIntervalMs: 0,
      accountCacheTtlMs: 300,
      log: (line) => logs.push(line),
    })
    if (register) {
      await addOrUpdateService(clients, {
        service: {
          ...service,
          url: node.url,
          verifiability: 'TeeML',
          inputPrice: 0n,
          additionalInfo: '{}',
          teeSignerAddress: signer.address,
        },
        stake: parseEther('100'),
      })
      await acknowledgeTEESignerByOwner(m.owner, { provider: address })
    }
    return { node, signer, address }
  }

  beforeAll(async () => {
    speech = await mediaNode(3, { serviceType: 'audio-generation', model: DEV_TTS_MODEL, outputPrice: SECOND })
    edits = await mediaNode(8, { serviceType: 'image-editing', model: DEV_IMAGE_EDIT_MODEL, outputPrice: IMAGE })
    // A backend shaped like 0G's speech adaptors: it states the duration in a header, or (for ?silent) answers mp3
    // bytes and says nothing, which nobody can measure without decoding.
    adaptorBackend = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.setHeader('content-type', 'audio/mpeg')
        if (!req.headers['x-test-silent']) res.setHeader('X-0G-Audio-Duration-Seconds', '3.2')
        res.end(Buffer.from('ID3\u0004 not really an mp3'))
      })
    })
    await new Promise<void>((resolve) => adaptorBackend.listen(0, '127.0.0.1', resolve))
    const port = (adaptorBackend.address() as AddressInfo).port
    // The speech provider's second node, in front of the adaptor (same account, so the same on-chain service).
    adaptor = await mediaNode(3, { serviceType: '', model: '', outputPrice: 0n }, `http://127.0.0.1:${port}`, false)
    await depositFund(m.user, { amount: parseEther('10') })
    for (const provider of [speech.address, edits.address]) {
      await transferFund(m.user, { provider, amount: parseEther('3') })
    }
  })
  afterAll(async () => {
    for (const media of [speech, adaptor, edits]) await media?.node.close()
    adaptorBackend?.closeAllConnections()
    await new Promise((resolve) => adaptorBackend?.close(resolve))
  })

  const speak = async (node: ProviderNode, body: Record<string, unknown>, who?: ZgWalletClients, headers = {}) => {
    const requestBody = JSON.stringify({ model: DEV_TTS_MODEL, voice: 'alloy', ...body })
    const res = await fetch(`${node.url}/v1/proxy/audio/speech`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${await m.token(who, { provider: speech.address })}`,
        ...headers,
      },
      body: requestBody,
    })
    const bytes = Buffer.from(await res.arrayBuffer())
    const record = node.store.records().find((r) => r.resKey === res.headers.get('zg-res-key'))
    return { res, requestBody, bytes, record }
  }

  it('bills speech per second of audio at the output price, says so in the X-0G headers, and signs the bytes', async () => {
    const { res, requestBody, bytes, record } = await speak(speech.node, {
      input: 'The provider measures the audio it relays.',
      response_format: 'wav',
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('audio/wav')
    const seconds = wavDurationSeconds(bytes)!
    expect(seconds).toBeGreaterThan(0.5)
    const billed = BigInt(Math.ceil(seconds))
    expect(res.headers.get('x-0g-audio-duration-seconds')).toBe(String(Math.round(seconds * 1000) / 1000))
    expect(res.headers.get('x-0g-fee')).toBe((billed * SECOND).toString())
    expect(res.headers.get('zg-audio-duration-source')).toBe('measured')
    expect(res.headers.get('access-control-expose-headers')).toContain('X-0G-Fee')
    expect(record).toMatchObject({
      endpoint: 'audio/speech',
      inputCount: 0n,
      outputCount: billed,
      fee: billed * SECOND,
    })
    // Signed over the exact audio bytes: served by the signature route, and sent along.
    const sig = await json(await fetch(`${speech.node.url}/v1/proxy/signature/${res.headers.get('zg-res-key')}`))
    expect(res.headers.get('zg-res-signature')).toBe(sig.signature)
    expect(
      await verifyResponseSignature({
        signature: sig,
        expectedSigner: speech.signer.address,
        requestBody,
        responseBody: bytes,
      }),
    ).toEqual({ ok: true })
    // pcm is measured too (OpenAI's pcm: 24 kHz 16-bit mono).
    const pcm = await speak(speech.node, {
      input: 'The provider measures the audio it relays.',
      response_format: 'pcm',
    })
    expect(pcm.bytes.equals(bytes.subarray(44))).toBe(true)
    expect(pcm.record).toMatchObject({ outputCount: billed })
  })

  it('bills the duration the backend states, or the reservation when it states nothing it can be measured by', async () => {
    const stated = await speak(adaptor.node, { input: 'hello', response_format: 'mp3', max_duration: 30 })
    expect(stated.res.status).toBe(200)
    expect(stated.res.headers.get('x-0g-audio-duration-seconds')).toBe('3.2')
    expect(stated.res.headers.get('zg-audio-duration-source')).toBe('backend')
    expect(stated.record).toMatchObject({ outputCount: 4n, fee: 4n * SECOND })
    const silent = await speak(adaptor.node, { input: 'hello', response_format: 'mp3', max_duration: 30 }, undefined, {
      'x-test-silent': '1',
    })
    expect(silent.res.headers.get('zg-audio-duration-source')).toBe('reserved')
    expect(silent.res.headers.get('x-0g-audio-duration-seconds')).toBe('30')
    expect(silent.record).toMatchObject({ outputCount: 30n, fee: 30n * SECOND })
    expect(logs.filter((l) => /billed at their reserved ceiling/.test(l))).toHaveLength(1)
  })

  it('reserves min(max_duration, 120) s on admission: 402 when the sub-account cannot cover it', async () => {
    const poor = m.clientsOf(9)
    await addLedger(poor, { amount: parseEther('3') })
    await transferFund(poor, { provider: speech.address, amount: parseEther('2') })
    const before = speech.node.store.records().length
    // 1 0G reserve + 120 s × 0.01 0G = 2.2 0G > 2 0G.
    for (const body of [{}, { max_duration: 500 }]) {
      const { res, bytes } = await speak(speech.node, { input: 'Too dear.', ...body }, poor)
      expect(res.status).toBe(402)
      const error = JSON.parse(bytes.toString()).error
      expect(error.code).toBe('insufficient_balance')
      expect(error.message).toContain("this request's estimate 1.2 0G")
    }
    expect(speech.node.store.records().length).toBe(before)
    // Ten seconds reserve 0.1 0G: admitted, and billed within them.
    const { res, record } = await speak(speech.node, { input: 'Cheap enough.', max_duration: 10 }, poor)
    expect(res.status).toBe(200)
    expect(record!.outputCount).toBeLessThanOrEqual(10n)
    const bad = await speak(speech.node, { input: 'x', max_duration: -1 }, poor)
    expect(bad.res.status).toBe(400)
    expect(JSON.parse(bad.bytes.toString()).error.param).toBe('max_duration')
  })

  it("passes the backend's refusals on and bills nothing", async () => {
    const before = speech.node.store.records().length
    const { res, bytes } = await speak(speech.node, { input: 'x', response_format: 'mp3' })
    expect(res.status).toBe(400)
    expect(JSON.parse(bytes.toString()).error).toMatchObject({ param: 'response_format' })
    expect(speech.node.store.records().length).toBe(before)
  })

  it('streams an image edit through and bills per image returned, at the output price', async () => {
    const rgb = new Uint8ClampedArray(32 * 32 * 3).map((_, i) => (i * 7) % 256)
    const form = new FormData()
    form.append('image', new Blob([new Uint8Array(encodePng(32, 32, rgb))], { type: 'image/png' }), 'in.png')
    form.append('prompt', 'add a moon')
    form.append('model', DEV_IMAGE_EDIT_MODEL)
    form.append('n', '3')
    // The exact bytes sent, to check what the node signed.
    const sent = new Request('http://x', { method: 'POST', body: form })
    const requestBody = Buffer.from(await sent.arrayBuffer())
    const res = await fetch(`${edits.node.url}/v1/proxy/images/edits`, {
      method: 'POST',
      headers: {
        'content-type': sent.headers.get('content-type')!,
        authorization: `Bearer ${await m.token(undefined, { provider: edits.address })}`,
      },
      body: requestBody,
    })
    expect(res.status).toBe(200)
    const text = await res.text()
    expect(JSON.parse(text).data).toHaveLength(3)
    const key = res.headers.get('zg-res-key')!
    expect(edits.node.store.records().find((r) => r.resKey === key)).toMatchObject({
      endpoint: 'images/edits',
      outputCount: 3n,
      fee: 3n * IMAGE,
    })
    const sig = await json(await fetch(`${edits.node.url}/v1/proxy/signature/${key}`))
    expect(
      await verifyResponseSignature({
        signature: sig,
        expectedSigner: edits.signer.address,
        requestBody,
        responseBody: text,
      }),
    ).toEqual({ ok: true })
  })
})
