import { createHash } from 'node:crypto'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Delivery } from './delivery-verifier.ts'
import { ResponseStore } from './responses/store.ts'
import { type StubGateway, startStubGateway } from './stub-gateway.ts'

const MODEL = 'test/chat'

/** What the stub provider received, and the exact bytes it answered with. */
type Exchange = { body: Buffer; sent: Buffer[] }

let provider: Server
let stub: StubGateway
let baseURL: string
let exchanges: Exchange[] = []
let deliveries: Delivery[]
let store: ResponseStore
/** Released by a test to let the stub provider finish a stream it holds back. */
let release: () => void = () => {}

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
const USAGE = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } })}\n\n`

/** The stub's scripts, chosen by the last user message. */
async function answer(script: string, stream: boolean, res: ServerResponse, exchange: Exchange) {
  const write = (text: string) => {
    const bytes = Buffer.from(text)
    exchange.sent.push(bytes)
    res.write(bytes)
  }
  if (!stream) {
    res.writeHead(200, { 'content-type': 'application/json' })
    if (script === 'garbage') return res.end(write('<html>oops</html>'))
    const body = JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      created: 1,
      model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Bonjour 🦊' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    })
    write(body)
    return res.end()
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  write(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'Bon' }))
  if (script === 'held') await new Promise<void>((resolve) => (release = resolve))
  write(chunk({ content: 'jour' }))
  if (script === 'reset') {
    // Mid-chunk, then the connection dies: no terminator, no [DONE].
    await new Promise((r) => setTimeout(r, 20))
    return res.socket?.destroy()
  }
  if (script === 'cut') return res.end()
  write(chunk({}, 'stop') + USAGE + 'data: [DONE]\n\n')
  res.end()
}

beforeAll(async () => {
  provider = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const exchange: Exchange = { body: Buffer.concat(chunks), sent: [] }
      exchanges.push(exchange)
      const chat = JSON.parse(exchange.body.toString())
      void answer(String(chat.messages.at(-1).content), chat.stream === true, res, exchange)
    })
  })
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve))
  store = new ResponseStore(':memory:')
  stub = await startStubGateway({
    providerUrl: `http://127.0.0.1:${(provider.address() as AddressInfo).port}`,
    model: MODEL,
    serviceType: 'chatbot',
    responses: store,
  })
  baseURL = stub.baseURL
  deliveries = stub.deliveries
})
afterAll(async () => {
  await stub?.close()
  provider?.close()
  store?.close()
})
beforeEach(() => {
  exchanges = []
  deliveries.length = 0
})

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')
/** The hash a delivery check compares (it is given bytes or their hash). */
const hashOf = (body: Delivery['requestBody']) => ('sha256' in body ? body.sha256 : sha256(body))

const post = (body: Record<string, unknown>) =>
  fetch(`${baseURL}/responses`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, ...body }),
  })

const types = (text: string) =>
  text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => JSON.parse(block.split('\n')[1]!.slice(6)).type as string)

/** Waits for the delivery check that follows a call (it runs once the stream has ended). */
async function delivered(): Promise<Delivery> {
  for (let i = 0; i < 100 && !deliveries.length; i++) await new Promise((r) => setTimeout(r, 10))
  return deliveries[0]!
}

describe('a Responses call through forward(): translated for the client, verified over the provider bytes', () => {
  it('verifies the exact chat call sent and the provider’s own answer, not the translation', async () => {
    const client = new OpenAI({ baseURL, apiKey: 'sk-test', maxRetries: 0 })
    const response = await client.responses.create({ model: MODEL, input: 'hello' })
    expect(response.output_text).toBe('Bonjour 🦊')
    const delivery = await delivered()
    const [exchange] = exchanges
    expect(JSON.parse(exchange!.body.toString())).toEqual({
      model: MODEL,
      messages: [{ role: 'user', content: 'hello' }],
    })
    expect(hashOf(delivery.requestBody)).toBe(sha256(exchange!.body))
    expect(hashOf(delivery.responseBody)).toBe(sha256(Buffer.concat(exchange!.sent)))
  })

  it('does the same for a stream, and relays it as it comes rather than at the end', async () => {
    const res = await post({ input: 'held', stream: true })
    const reader = res.body!.getReader()
    let text = ''
    // The provider holds back the rest of its answer until the client has the first delta.
    while (!text.includes('response.output_text.delta')) text += new TextDecoder().decode((await reader.read()).value)
    release()
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value)
    expect(types(text).at(-1)).toBe('response.completed')
    const delivery = await delivered()
    expect(hashOf(delivery.requestBody)).toBe(sha256(exchanges[0]!.body))
    expect(hashOf(delivery.responseBody)).toBe(sha256(Buffer.concat(exchanges[0]!.sent)))
    expect(JSON.parse(exchanges[0]!.body.toString())).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    })
  })

  it('ends with response.failed when the provider ends the stream unfinished', async () => {
    const text = await (await post({ input: 'cut', stream: true })).text()
    const events = text.split('\n\n').filter(Boolean)
    const last = JSON.parse(events.at(-1)!.split('\n')[1]!.slice(6))
    expect(last).toMatchObject({
      type: 'response.failed',
      response: { status: 'failed', error: { message: expect.stringContaining('before it was complete') } },
    })
    expect(last.response.output[0]).toMatchObject({
      type: 'message',
      status: 'incomplete',
      content: [{ text: 'Bonjour' }],
    })
    // A failed response is stored as OpenAI stores it.
    expect(store.get(last.response.id, 'dev')?.response.status).toBe('failed')
  })

  it('ends with response.failed when the connection to the provider breaks mid-stream', async () => {
    const stream = new OpenAI({ baseURL, apiKey: 'sk-test', maxRetries: 0 }).responses.stream({
      model: MODEL,
      input: 'reset',
    })
    const final = await stream.finalResponse()
    expect(final.status).toBe('failed')
    expect(final.error?.message).toMatch(/failed mid-stream/)
    expect(final.output_text).toBe('Bonjour')
  })

  it('answers a provider 200 that is not JSON with an OpenAI-shaped 502, never a 200', async () => {
    const res = await post({ input: 'garbage' })
    expect(res.status).toBe(502)
    expect(res.headers.get('content-type')).toContain('application/json')
    expect(((await res.json()) as { error: Record<string, string> }).error).toMatchObject({
      code: 'upstream_protocol_error',
      message: expect.stringMatching(/answered JSON that does not parse/),
    })
  })
})
