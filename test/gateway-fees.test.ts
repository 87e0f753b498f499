import { execFile } from 'node:child_process'
import { request } from 'node:http'
import { promisify } from 'node:util'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { format0G } from '../src/chain/units.ts'
import { DEV_CHAT_MODEL, DEV_EMBEDDING_MODEL } from '../src/devnet/backends/index.ts'
import { DEV_ADMIN_KEY } from '../src/devnet/dev-stack.ts'
import { startTestStack } from './support/dev-stack.ts'

const run = promisify(execFile)
let stack: Awaited<ReturnType<typeof startTestStack>>
let client: OpenAI

beforeAll(async () => {
  stack = await startTestStack()
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-zg-dev', maxRetries: 0 })
}, 60_000)
afterAll(async () => {
  await stack?.dispose()
})

const ask = (content: string) => [{ role: 'user' as const, content }]

type Receipt = { fee: string; verification: { status: string } }
/** The receipt of a call, once its delivery check is done. */
async function receipt(id: string, key = 'sk-zg-dev'): Promise<Receipt> {
  for (let i = 0; ; i++) {
    // A receipt is shown only to the key that made the call.
    const res = await fetch(`${stack.baseURL}/receipts/${id}`, { headers: { authorization: `Bearer ${key}` } })
    const body = (await res.json()) as Receipt
    if (body.verification.status !== 'pending' || i >= 200) return body
    await new Promise((r) => setTimeout(r, 25))
  }
}

const cli = async (args: string[]) =>
  (await run(process.execPath, ['bin/zg-gateway.js', ...args, '--data-dir', stack.dataDir])).stdout

describe('every answer says what it cost', () => {
  it('a chat: x-zg-fee and usage.cost agree with the receipt, cost written exactly from the bigint', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: ask('what does it cost?') })
      .withResponse()
    const fee = response.headers.get('x-zg-fee')!
    expect(fee).toMatch(/^\d+$/)
    expect(BigInt(fee)).toBeGreaterThan(0n)
    const usage = data.usage as unknown as { cost: number }
    expect(usage.cost).toBe(Number(format0G(BigInt(fee))))
    const r = await receipt(response.headers.get('x-request-id')!)
    expect(r.fee).toBe(fee)
    // The provider's own bytes were verified, not the copy with usage.cost in it.
    expect(r.verification.status).toBe('verified')

    const raw = await fetch(`${stack.baseURL}/embeddings`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEV_EMBEDDING_MODEL, input: 'cost' }),
    })
    const text = await raw.text()
    expect(text).toContain(`"usage":{"cost":${format0G(BigInt(raw.headers.get('x-zg-fee')!))},`)
  })

  it('a stream with include_usage: usage.cost in its final chunk, and the fee in a trailer', async () => {
    const { data: stream, response } = await client.chat.completions
      .create({
        model: DEV_CHAT_MODEL,
        messages: ask('stream the cost'),
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse()
    let usage: { cost?: number } | undefined
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage as unknown as { cost: number }
    const id = response.headers.get('x-request-id')!
    const r = await receipt(id)
    expect(usage?.cost).toBe(Number(format0G(BigInt(r.fee))))

    // undici's fetch does not expose trailers: node:http does.
    const trailer = await new Promise<string | undefined>((resolve, reject) => {
      const url = new URL(`${stack.baseURL}/chat/completions`)
      const req = request(
        url,
        { method: 'POST', headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' } },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.trailers['x-zg-fee']))
        },
      )
      req.on('error', reject)
      req.end(JSON.stringify({ model: DEV_CHAT_MODEL, messages: ask('trailer'), stream: true }))
    })
    expect(BigInt(trailer!)).toBeGreaterThan(0n)
  })

  it('a response (Responses API): usage.cost, whole and in response.completed, as x-zg-fee says', async () => {
    const { data, response } = await client.responses
      .create({ model: DEV_CHAT_MODEL, input: 'what does a response cost?' })
      .withResponse()
    const fee = BigInt(response.headers.get('x-zg-fee')!)
    expect(fee).toBeGreaterThan(0n)
    expect((data.usage as unknown as { cost: number }).cost).toBe(Number(format0G(fee)))
    // Kept with the stored response.
    const stored = await client.responses.retrieve(data.id)
    expect((stored.usage as unknown as { cost: number }).cost).toBe(Number(format0G(fee)))

    const { data: stream, response: streamed } = await client.responses
      .create({ model: DEV_CHAT_MODEL, input: 'and streamed?', stream: true })
      .withResponse()
    let cost: number | undefined
    for await (const event of stream)
      if (event.type === 'response.completed') cost = (event.response.usage as unknown as { cost: number }).cost
    const r = await receipt(streamed.headers.get('x-request-id')!)
    expect(cost).toBe(Number(format0G(BigInt(r.fee))))
  })

  it('a stream without include_usage shows no usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: DEV_CHAT_MODEL,
      messages: ask('no usage please'),
      stream: true,
    })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(chunks.length).toBeGreaterThan(1)
    for (const chunk of chunks) expect(chunk.usage ?? null).toBeNull()
  })
})

describe('spend per key and day', () => {
  it('usage --json and GET /admin/usage report each key’s calls, fees and the verified part', async () => {
    const keyA = JSON.parse(await cli(['keys', 'create', '--name', 'fees-a', '--json'])) as { id: string; key: string }
    const keyB = JSON.parse(await cli(['keys', 'create', '--name', 'fees-b', '--json'])) as { id: string; key: string }
    const fees = new Map<string, bigint>([
      [keyA.id, 0n],
      [keyB.id, 0n],
    ])
    for (const [key, n] of [
      [keyA, 2],
      [keyB, 3],
    ] as const) {
      const c = new OpenAI({ baseURL: stack.baseURL, apiKey: key.key, maxRetries: 0 })
      for (let i = 0; i < n; i++) {
        const { response } = await c.chat.completions
          .create({ model: DEV_CHAT_MODEL, messages: ask(`key ${key.id} call ${i}`) })
          .withResponse()
        const r = await receipt(response.headers.get('x-request-id')!, key.key)
        fees.set(key.id, fees.get(key.id)! + BigInt(r.fee))
      }
    }
    type Row = { key: string; day: string; calls: number; verified: number; fee: string; verifiedFee: string }
    const today = new Date().toISOString().slice(0, 10)
    const check = (report: { by: string[]; rows: Row[] }) => {
      expect(report.by).toEqual(['key', 'day'])
      for (const [id, n] of [
        [keyA.id, 2],
        [keyB.id, 3],
      ] as const) {
        const row = report.rows.find((r) => r.key === id)!
        expect(row).toMatchObject({ day: today, calls: n, verified: n })
        expect(BigInt(row.fee)).toBe(fees.get(id))
        expect(BigInt(row.verifiedFee)).toBe(fees.get(id))
      }
    }
    check(JSON.parse(await cli(['usage', '--by', 'key,day', '--since', '1h', '--json'])))
    const admin = await fetch(`${stack.gateway.url}/admin/usage?by=key,day&since=1h`, {
      headers: { authorization: `Bearer ${DEV_ADMIN_KEY}` },
    })
    expect(admin.status).toBe(200)
    const report = (await admin.json()) as { by: string[]; rows: Array<Row & { keyName: string }> }
    check(report)
    expect(report.rows.find((r) => r.key === keyA.id)?.keyName).toBe('fees-a')
    const bad = await fetch(`${stack.gateway.url}/admin/usage?by=colour`, {
      headers: { authorization: `Bearer ${DEV_ADMIN_KEY}` },
    })
    expect(bad.status).toBe(400)
  })
})
