import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
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

const ask = (content: string) => [{ role: 'user' as const, content }]

describe('the official openai client against the dev stack', () => {
  it('lists every model with its 0G service type and providers', async () => {
    const models = await client.models.list()
    // Aliases (gpt-4o-mini → the dev chat model, …) are listed too, each with its target.
    const served = models.data.filter((m) => !('alias_for' in m))
    const byId = Object.fromEntries(served.map((m) => [m.id, m as unknown as Record<string, unknown>]))
    expect(Object.keys(byId).sort()).toEqual(
      [DEV_CHAT_MODEL, DEV_EMBEDDING_MODEL, DEV_IMAGE_MODEL, DEV_STT_MODEL, DEV_TTS_MODEL, DEV_IMAGE_EDIT_MODEL].sort(),
    )
    expect(byId[DEV_CHAT_MODEL]).toMatchObject({ object: 'model', owned_by: '0g', service_type: 'chatbot' })
    expect(byId[DEV_CHAT_MODEL]!.providers).toHaveLength(2)
    expect(byId[DEV_STT_MODEL]).toMatchObject({ service_type: 'speech-to-text' })
    expect(byId[DEV_TTS_MODEL]).toMatchObject({ service_type: 'audio-generation' })
    expect(byId[DEV_IMAGE_EDIT_MODEL]).toMatchObject({ service_type: 'image-editing' })
    expect(Number.isInteger(byId[DEV_CHAT_MODEL]!.created)).toBe(true)
  })

  it('answers a chat completion, with the request id and the provider in the headers', async () => {
    const { data, response, request_id } = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: ask('Tell me about the sea') })
      .withResponse()
    expect(data.id).toMatch(/^chatcmpl-/)
    expect(data.object).toBe('chat.completion')
    expect(Number.isInteger(data.created)).toBe(true)
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0)
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens)
    expect(request_id).toBe(response.headers.get('x-request-id'))
    expect(response.headers.get('x-zg-provider')).toMatch(/^0x[0-9a-fA-F]{40}$/)
  })

  it('streams a chat with usage, byte-identical in content to the same request not streamed', async () => {
    const messages = ask('Stream me something with accents and emoji')
    const whole = await client.chat.completions.create({ model: DEV_CHAT_MODEL, messages, seed: 7 })
    const stream = await client.chat.completions.create({
      model: DEV_CHAT_MODEL,
      messages,
      seed: 7,
      stream: true,
      stream_options: { include_usage: true },
    })
    let content = ''
    const ids = new Set<string>()
    let usage: OpenAI.CompletionUsage | undefined | null
    let finishes = 0
    for await (const chunk of stream) {
      ids.add(chunk.id)
      content += chunk.choices[0]?.delta.content ?? ''
      if (chunk.choices[0]?.finish_reason) finishes++
      if (chunk.usage) usage = chunk.usage
    }
    expect(ids.size).toBe(1)
    expect(finishes).toBe(1)
    expect(Buffer.from(content)).toEqual(Buffer.from(whole.choices[0]!.message.content!))
    expect(Buffer.byteLength(content)).toBeGreaterThan(content.length)
    expect(usage).toEqual(whole.usage)
  })

  it('shows no usage chunk to a client that did not ask', async () => {
    const stream = await client.chat.completions.create({ model: DEV_CHAT_MODEL, messages: ask('hi'), stream: true })
    for await (const chunk of stream) expect(chunk.usage ?? null).toBeNull()
  })

  it('passes tool calls through', async () => {
    const completion = await client.chat.completions.create({
      model: DEV_CHAT_MODEL,
      messages: ask('What is the weather in Paris?'),
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather for a city',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
    })
    const choice = completion.choices[0]!
    expect(choice.finish_reason).toBe('tool_calls')
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall
    expect(call.function.name).toBe('get_weather')
    expect(typeof JSON.parse(call.function.arguments).city).toBe('string')
  })

  it('embeds with the SDK default (base64) into non-empty vectors, and as floats', async () => {
    const b64 = await client.embeddings.create({ model: DEV_EMBEDDING_MODEL, input: ['first', 'second'] })
    expect(b64.data).toHaveLength(2)
    expect(b64.data[0]!.embedding.length).toBeGreaterThan(0)
    const floats = await client.embeddings.create({
      model: DEV_EMBEDDING_MODEL,
      input: ['first', 'second'],
      encoding_format: 'float',
    })
    expect(floats.data[1]!.embedding.length).toBe(b64.data[1]!.embedding.length)
    expect(floats.data[0]!.embedding[3]).toBeCloseTo(b64.data[0]!.embedding[3]!, 6)
  })

  it('generates an image as b64_json PNG', async () => {
    const image = await client.images.generate({
      model: DEV_IMAGE_MODEL,
      prompt: 'a red fox',
      size: '256x256',
      response_format: 'b64_json',
    })
    const png = Buffer.from(image.data![0]!.b64_json!, 'base64')
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    expect(Number.isInteger(image.created)).toBe(true)
  })

  it('transcribes audio in every response format', async () => {
    const wav = toneWav([
      { hz: 330, seconds: 0.8 },
      { hz: 0, seconds: 0.4 },
      { hz: 660, seconds: 1.0 },
    ])
    const file = () => toFile(wav, 'tones.wav', { type: 'audio/wav' })
    const json = await client.audio.transcriptions.create({ model: DEV_STT_MODEL, file: await file() })
    expect(json.text.length).toBeGreaterThan(0)
    const text = await client.audio.transcriptions.create({
      model: DEV_STT_MODEL,
      file: await file(),
      response_format: 'text',
    })
    expect(typeof text).toBe('string')
    expect(String(text).trim()).toBe(json.text.trim())
    const srt = await client.audio.transcriptions.create({
      model: DEV_STT_MODEL,
      file: await file(),
      response_format: 'srt',
    })
    expect(String(srt)).toMatch(/00:00:00,000 -->/)
    const vtt = await client.audio.transcriptions.create({
      model: DEV_STT_MODEL,
      file: await file(),
      response_format: 'vtt',
    })
    expect(String(vtt)).toMatch(/^WEBVTT/)
    const verbose = await client.audio.transcriptions.create({
      model: DEV_STT_MODEL,
      file: await file(),
      response_format: 'verbose_json',
    })
    expect(typeof verbose.duration).toBe('number')
    expect(verbose.duration).toBeCloseTo(2.2, 1)
  })

  const receiptOf = async (id: string) => {
    let receipt: { verification: { status: string; level: string; detail: string } } | undefined
    for (let i = 0; i < 50 && receipt?.verification.status !== 'verified'; i++) {
      await new Promise((r) => setTimeout(r, 20))
      const res = await fetch(`${stack.baseURL}/receipts/${id}`, { headers: { authorization: 'Bearer sk-zg-dev' } })
      if (res.ok) receipt = (await res.json()) as typeof receipt
    }
    return receipt
  }

  it('verifies a delivered response and serves its receipt', async () => {
    const { response } = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: ask('receipt please') })
      .withResponse()
    const receipt = await receiptOf(response.headers.get('x-request-id')!)
    expect(receipt?.verification).toMatchObject({ status: 'verified', level: 'L1' })
    // The provider node sent its signature with the answer: no second round trip to it.
    expect(receipt?.verification.detail).toMatch(/\(sent with the response\)$/)
  })

  it('verifies a stream with the signature its provider sent as a trailer', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: ask('a streamed receipt'), stream: true })
      .withResponse()
    for await (const _ of data) {
      // read to the end
    }
    const receipt = await receiptOf(response.headers.get('x-request-id')!)
    expect(receipt?.verification).toMatchObject({ status: 'verified', level: 'L1' })
    expect(receipt?.verification.detail).toMatch(/\(sent with the response\)$/)
  })
})

describe('@langchain/openai against the dev stack', () => {
  const config = () => ({ baseURL: stack.baseURL })

  it('invokes and streams a chat model, with usage metadata', async () => {
    const chat = new ChatOpenAI({ model: DEV_CHAT_MODEL, apiKey: 'sk-zg-dev', configuration: config(), maxRetries: 0 })
    const reply = await chat.invoke('Hello LangChain')
    expect(String(reply.content).length).toBeGreaterThan(0)
    let text = ''
    let usage: unknown
    for await (const chunk of await chat.stream('Hello again')) {
      text += String(chunk.content)
      if (chunk.usage_metadata) usage = chunk.usage_metadata
    }
    expect(text.length).toBeGreaterThan(0)
    expect(usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) })
  })

  it('embeds queries and documents into non-empty vectors, in order', async () => {
    const embeddings = new OpenAIEmbeddings({
      model: DEV_EMBEDDING_MODEL,
      apiKey: 'sk-zg-dev',
      configuration: config(),
    })
    const query = await embeddings.embedQuery('what is 0G?')
    expect(query.length).toBeGreaterThan(0)
    const docs = await embeddings.embedDocuments(['alpha', 'beta', 'gamma'])
    expect(docs).toHaveLength(3)
    expect(docs.every((d) => d.length === query.length)).toBe(true)
    expect(docs[0]).not.toEqual(docs[1])
    expect(await embeddings.embedQuery('alpha')).toEqual(docs[0])
  })
})
