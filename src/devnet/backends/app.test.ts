import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDevBackendApp,
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
  type DevBackend,
  startDevBackend,
} from './index.ts'
import { type ErrorBody, json } from './test-support.ts'

type ModelList = {
  object: string
  data: Array<{ id: string; object: string; created: number; owned_by: string; max_model_len?: number }>
}

let backend: DevBackend
beforeAll(async () => {
  backend = await startDevBackend({ maxContextTokens: 4096 })
})
afterAll(() => backend.close())

describe('dev backend server', () => {
  it('listens on 127.0.0.1 and answers /health', async () => {
    expect(backend.url).toBe(`http://127.0.0.1:${backend.port}`)
    expect((await fetch(`${backend.url}/health`)).status).toBe(200)
  })

  it('lists the six dev models', async () => {
    const out = await json<ModelList>(await fetch(`${backend.url}/v1/models`))
    expect(out.object).toBe('list')
    expect(out.data.map((m) => m.id)).toEqual([
      DEV_CHAT_MODEL,
      DEV_EMBEDDING_MODEL,
      DEV_IMAGE_MODEL,
      DEV_STT_MODEL,
      DEV_TTS_MODEL,
      DEV_IMAGE_EDIT_MODEL,
    ])
    for (const model of out.data) {
      expect(model).toMatchObject({ object: 'model', owned_by: 'zg-gateway-dev' })
      expect(model.id.startsWith('dev/')).toBe(true)
      expect(Number.isInteger(model.created)).toBe(true)
    }
    expect(out.data[0]!.max_model_len).toBe(4096)
  })

  it('echoes x-request-id, or makes one', async () => {
    const echoed = await fetch(`${backend.url}/v1/models`, { headers: { 'x-request-id': 'req-123' } })
    expect(echoed.headers.get('x-request-id')).toBe('req-123')
    expect((await fetch(`${backend.url}/v1/models`)).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('answers unknown paths and methods with a JSON 404', async () => {
    for (const [method, path] of [
      ['POST', '/v1/nope'],
      ['GET', '/v1/chat/completions'],
    ] as const) {
      const response = await fetch(`${backend.url}${path}`, { method })
      expect(response.status).toBe(404)
      expect((await json<ErrorBody>(response)).error.code).toBe(404)
    }
  })

  it('closes with streams still open', async () => {
    const other = await startDevBackend({ tokenDelayMs: 1000 })
    const response = await fetch(`${other.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }),
    })
    await response.body!.getReader().read()
    await other.close()
  })

  it('also runs in-process, without a server', async () => {
    const response = await createDevBackendApp().request('/v1/embeddings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'hi' }),
    })
    expect(response.status).toBe(200)
  })
})
