import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
} from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'
import { toneWav } from './support/wav.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
let client: OpenAI

beforeAll(async () => {
  stack = await startTestStack()
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-zg-dev', maxRetries: 0 })
})
afterAll(async () => {
  await stack?.dispose()
})

describe('models and aliases', () => {
  it('retrieves one model by its id, slashes and all', async () => {
    const model = (await client.models.retrieve(DEV_CHAT_MODEL)) as OpenAI.Model & Record<string, unknown>
    expect(model).toMatchObject({ id: DEV_CHAT_MODEL, object: 'model', service_type: 'chatbot' })
    expect(model.providers).toHaveLength(2)
    // The same without percent-encoding, as curl users type it.
    const raw = await fetch(`${stack.baseURL}/models/${DEV_CHAT_MODEL}`, {
      headers: { authorization: 'Bearer sk-zg-dev' },
    })
    expect(raw.status).toBe(200)
    expect(((await raw.json()) as { id: string }).id).toBe(DEV_CHAT_MODEL)
  })

  it('answers an unknown model with an OpenAI 404', async () => {
    const err = await client.models.retrieve('no/such-model').catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect(err.code).toBe('model_not_found')
    expect(err.param).toBe('model')
  })

  it('lists each alias with its target, and retrieves it', async () => {
    const { data } = await client.models.list()
    const alias = data.find((m) => m.id === 'gpt-4o-mini') as unknown as Record<string, unknown>
    expect(alias).toMatchObject({ alias_for: DEV_CHAT_MODEL, service_type: 'chatbot' })
    expect(data.find((m) => m.id === 'text-embedding-ada-002')).toMatchObject({ alias_for: DEV_EMBEDDING_MODEL })
    expect(await client.models.retrieve('gpt-4o-mini')).toMatchObject({ alias_for: DEV_CHAT_MODEL })
  })

  it('serves a chat through an alias: the provider is asked for the real model', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] })
      .withResponse()
    expect(data.model).toBe(DEV_CHAT_MODEL)
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0)
    const id = response.headers.get('x-request-id')!
    // The receipt (exact bytes sent, alias resolved) verifies like any other.
    await expect
      .poll(async () => (await receipt(id)).verification?.status, { timeout: 10_000 })
      .toMatch(/^(verified|unverifiable)$/)
    expect((await receipt(id)).model).toBe(DEV_CHAT_MODEL)
  })

  it("answers LangChain's ChatOpenAI with no model argument, through its default model's alias", async () => {
    const llm = new ChatOpenAI({ apiKey: 'sk-zg-dev', configuration: { baseURL: stack.baseURL }, maxRetries: 0 })
    expect(llm.model).toBe('gpt-3.5-turbo')
    const answer = await llm.invoke('Say something about the sea')
    expect(String(answer.content).length).toBeGreaterThan(0)
    expect(answer.response_metadata.model_name).toBe(DEV_CHAT_MODEL)
  })

  it("embeds with LangChain's OpenAIEmbeddings defaults (text-embedding-ada-002, base64)", async () => {
    const embeddings = new OpenAIEmbeddings({ apiKey: 'sk-zg-dev', configuration: { baseURL: stack.baseURL } })
    const vector = await embeddings.embedQuery('the sea')
    expect(vector.length).toBe(256)
    expect(vector.some((x) => x !== 0)).toBe(true)
  })

  it('transcribes through an alias: the upload reaches the provider naming the real model, and verifies', async () => {
    // Long enough (3 MB) that the file, sent before the model by the SDK, spills to disk before routing.
    const wav = toneWav([
      { hz: 440, seconds: 50 },
      { hz: 0, seconds: 0.5 },
      { hz: 660, seconds: 50 },
    ])
    const { data, response } = await client.audio.transcriptions
      .create({ model: 'whisper-1', file: await toFile(wav, 'tones.wav', { type: 'audio/wav' }) })
      .withResponse()
    expect(data.text.length).toBeGreaterThan(0)
    const id = response.headers.get('x-request-id')!
    await expect.poll(async () => (await receipt(id)).verification?.status, { timeout: 10_000 }).toBe('verified')
    expect((await receipt(id)).model).toBe(DEV_STT_MODEL)
  })

  it("edits an image with the official client's images.edit, by model and by alias, verified", async () => {
    const source = await client.images.generate({ model: DEV_IMAGE_MODEL, prompt: 'a harbour', size: '256x256' })
    const png = Buffer.from(source.data![0]!.b64_json!, 'base64')
    const edited: string[] = []
    for (const model of [DEV_IMAGE_EDIT_MODEL, 'gpt-image-1']) {
      const { data, response } = await client.images
        .edit({ model, prompt: 'add a lighthouse', image: await toFile(png, 'harbour.png', { type: 'image/png' }) })
        .withResponse()
      const out = Buffer.from(data.data![0]!.b64_json!, 'base64')
      expect(out.subarray(1, 4).toString()).toBe('PNG')
      expect(out.equals(png)).toBe(false)
      edited.push(out.toString('base64'))
      const id = response.headers.get('x-request-id')!
      await expect.poll(async () => (await receipt(id)).verification?.status, { timeout: 10_000 }).toBe('verified')
      expect((await receipt(id)).model).toBe(DEV_IMAGE_EDIT_MODEL)
    }
    // The same edit, whichever name asked for it.
    expect(edited[1]).toBe(edited[0])
  })

  it('lists an alias with one target per kind of service once, naming every target', async () => {
    const { data } = await client.models.list()
    const entries = data.filter((m) => m.id === 'gpt-image-1') as unknown as Array<Record<string, unknown>>
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({
      alias_for: DEV_IMAGE_MODEL,
      alias_targets: [DEV_IMAGE_MODEL, DEV_IMAGE_EDIT_MODEL],
    })
  })

  it('returns images as b64_json when the client named no response_format', async () => {
    const image = await client.images.generate({ model: 'dall-e-2', prompt: 'a lighthouse', size: '256x256' })
    expect(image.data![0]!.b64_json!.length).toBeGreaterThan(100)
    expect(Buffer.from(image.data![0]!.b64_json!, 'base64').subarray(1, 4).toString()).toBe('PNG')
    expect(DEV_IMAGE_MODEL).toMatch(/^dev\//)
  })
})

async function receipt(id: string) {
  const res = await fetch(`${stack.baseURL}/receipts/${id}`, { headers: { authorization: 'Bearer sk-zg-dev' } })
  return (await res.json()) as { model?: string; verification?: { status: string } }
}

describe('CORS for browser apps', () => {
  const origin = 'http://localhost:3000'

  it('answers a preflight from a localhost dev server without an API key', async () => {
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    })
    expect(res.status).toBe(204)
    expect(res.headers.get('access-control-allow-origin')).toBe(origin)
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization,content-type')
  })

  it('exposes the request id and x-zg headers on answers, streamed ones too', async () => {
    for (const stream of [false, true]) {
      const res = await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { origin, authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
        body: JSON.stringify({ model: DEV_CHAT_MODEL, stream, messages: [{ role: 'user', content: 'hi' }] }),
      })
      expect(res.status).toBe(200)
      await res.arrayBuffer()
      expect(res.headers.get('access-control-allow-origin')).toBe(origin)
      const exposed = res.headers.get('access-control-expose-headers')!
      for (const h of ['x-request-id', 'x-zg-provider', 'x-zg-verification', 'x-zg-receipt'])
        expect(exposed).toContain(h)
    }
  })

  it('gives nothing to an origin that is not allowed', async () => {
    const res = await fetch(`${stack.baseURL}/models`, {
      headers: { origin: 'https://elsewhere.example', authorization: 'Bearer sk-zg-dev' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('errors, whoever raised them', () => {
  it('refuses an out-of-range sampling parameter itself, as OpenAI words it', async () => {
    const err = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }], temperature: 3 })
      .catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.param).toBe('temperature')
    expect(err.message).toContain("Invalid 'temperature': expected a value <= 2")
    expect(err.headers.get('x-zg-provider')).toBeNull()
  })

  it("passes a provider's refusal on OpenAI-shaped, with its param, in the gateway's words, naming the provider", async () => {
    const err = await client.embeddings
      .create({ model: DEV_EMBEDDING_MODEL, input: 'the sea', dimensions: 100_000 })
      .catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect(err.param).toBe('dimensions')
    expect(err.type).toBe('invalid_request_error')
    expect(err.error.message).toBe("Invalid 'dimensions': expected a value <= 256.")
    expect(err.headers.get('x-zg-provider')).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect(err.headers.get('x-request-id')).toMatch(/^req_/)
  })
})
