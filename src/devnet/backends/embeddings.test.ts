import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_EMBEDDING_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { type ErrorBody, json, postJson } from './test-support.ts'
import { countTokens } from './tokenizer.ts'

type EmbeddingList<E> = {
  object: string
  model: string
  data: Array<{ object: string; index: number; embedding: E }>
  usage: { prompt_tokens: number; total_tokens: number }
}

let backend: DevBackend
let url: string
beforeAll(async () => {
  backend = await startDevBackend({ maxContextTokens: 64 })
  url = `${backend.url}/v1/embeddings`
})
afterAll(() => backend.close())

/** Float vectors unless asked for base64, which comes back as strings. */
async function embed<E = number[]>(body: Record<string, unknown>) {
  const response = await postJson(url, { model: DEV_EMBEDDING_MODEL, ...body })
  expect(response.status).toBe(200)
  return json<EmbeddingList<E>>(response)
}

function vectors<E>(out: EmbeddingList<E>): E[] {
  return out.data.map((d) => d.embedding)
}

function decodeBase64(b64: string): number[] {
  const bytes = Buffer.from(b64, 'base64')
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))
}

const cosine = (a: number[], b: number[]) => a.reduce((sum, x, i) => sum + x * b[i]!, 0)

describe('embeddings', () => {
  it('returns unit vectors of 256 dimensions in input order, with token usage', async () => {
    const input = ['the quiet garden', 'a café in Zürich', 'the quiet garden']
    const out = await embed({ input })
    expect(out).toMatchObject({ object: 'list', model: DEV_EMBEDDING_MODEL })
    expect(out.data.map((d) => d.index)).toEqual([0, 1, 2])
    for (const { embedding, object } of out.data) {
      expect(object).toBe('embedding')
      expect(embedding).toHaveLength(256)
      expect(Math.hypot(...embedding)).toBeCloseTo(1, 5)
    }
    const [a, b, c] = vectors(out)
    expect(a).toEqual(c)
    expect(a).not.toEqual(b)
    const tokens = input.reduce((sum, text) => sum + countTokens(text), 0)
    expect(out.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens })
  })

  it('encodes base64 as little-endian float32 carrying exactly the float values', async () => {
    const float = await embed({ input: 'hello world', encoding_format: 'float' })
    const [base64] = vectors(await embed<string>({ input: 'hello world', encoding_format: 'base64' }))
    expect(typeof base64).toBe('string')
    expect(decodeBase64(base64!)).toEqual(vectors(float)[0])
  })

  it('honours dimensions, accepts token ids, and rates shared words as closer', async () => {
    const [short] = vectors(await embed({ input: 'hello world', dimensions: 8 }))
    expect(short).toHaveLength(8)
    expect(Math.hypot(...short!)).toBeCloseTo(1, 5)
    const ids = await embed({
      input: [
        [1, 2, 3],
        [4, 5],
      ],
    })
    expect(ids.usage.prompt_tokens).toBe(5)
    const [a, b, c] = vectors(await embed({ input: ['red apple pie', 'red apple tart', 'blue ocean waves'] }))
    expect(cosine(a!, b!)).toBeGreaterThan(cosine(a!, c!))
  })

  it('rejects an input over the context length, and a chat model', async () => {
    const long = await postJson(url, { input: 'word '.repeat(100) })
    expect(long.status).toBe(400)
    expect((await json<ErrorBody>(long)).error.message).toMatch(/maximum context length is 64 tokens/)
    expect((await postJson(url, { model: 'dev/chat-deterministic', input: 'x' })).status).toBe(400)
  })
})
