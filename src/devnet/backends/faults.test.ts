import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DevBackend, FAULT_HEADER, startDevBackend } from './index.ts'
import { type ErrorBody, json, postJson } from './test-support.ts'

let backend: DevBackend
let url: string
beforeAll(async () => {
  backend = await startDevBackend({ tokenDelayMs: 20 })
  url = `${backend.url}/v1/chat/completions`
})
afterAll(() => backend.close())

const chat = { messages: [{ role: 'user', content: 'hello' }], max_tokens: 40 }

async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(5)
  }
}

/** Reads a body until it fails or ends; returns the text read and the error, if any. */
async function drain(response: Response): Promise<{ text: string; error?: Error }> {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { text }
      text += decoder.decode(value, { stream: true })
    }
  } catch (error) {
    return { text, error: error as Error }
  }
}

describe('fault injection', () => {
  it('error-before: a 500 in vLLM shape, streaming or not', async () => {
    for (const stream of [false, true]) {
      const response = await postJson(url, { ...chat, stream }, { [FAULT_HEADER]: 'error-before' })
      expect(response.status).toBe(500)
      expect(response.headers.get('content-type')).toMatch(/^application\/json/)
      expect((await json<ErrorBody>(response)).error.code).toBe(500)
    }
  })

  it('status-429: a 429 with Retry-After', async () => {
    const response = await postJson(url, chat, { [FAULT_HEADER]: 'status-429' })
    expect(response.status).toBe(429)
    expect(response.headers.get('retry-after')).toBe('1')
  })

  it('die-mid-stream: some chunks, then the connection dies without [DONE]', async () => {
    const response = await postJson(url, { ...chat, stream: true }, { [FAULT_HEADER]: 'die-mid-stream' })
    expect(response.status).toBe(200)
    const { text, error } = await drain(response)
    expect(error).toBeDefined()
    expect(text.split('\n\n').filter(Boolean)).toHaveLength(3)
    expect(text).not.toContain('[DONE]')
    const whole = await postJson(url, { ...chat, max_tokens: 5 }, { [FAULT_HEADER]: 'die-mid-stream' })
    expect((await drain(whole)).error).toBeDefined()
  })

  it('hang: no headers until the client gives up, then counted as aborted', async () => {
    const before = backend.stats.aborted
    const controller = new AbortController()
    const pending = postJson(url, chat, { [FAULT_HEADER]: 'hang' }, controller.signal)
    await until(() => backend.stats.inFlight === 1)
    await sleep(100)
    controller.abort()
    await expect(pending).rejects.toThrow()
    await until(() => backend.stats.aborted === before + 1 && backend.stats.inFlight === 0)
  })

  it('split-utf8: the same stream, with reads that end inside a character', async () => {
    const body = { messages: [{ role: 'user', content: 'café' }], max_tokens: 12, stream: true }
    const plain = await (await postJson(url, body)).text()
    const response = await postJson(url, body, { [FAULT_HEADER]: 'split-utf8' })
    const reads: Uint8Array[] = []
    for await (const chunk of response.body!) reads.push(chunk)
    // Ids and timestamps differ between two responses; nothing else may.
    const stable = (text: string) => text.replace(/chatcmpl-\w+/g, 'ID').replace(/"created":\d+/g, '')
    expect(stable(Buffer.concat(reads).toString('utf8'))).toBe(stable(plain))
    // A read that ends on a lead byte ends inside a character.
    expect(reads.some((read) => read.at(-1)! >= 0xc0)).toBe(true)
  })

  it('rejects an unknown fault', async () => {
    expect((await postJson(url, chat, { [FAULT_HEADER]: 'explode' })).status).toBe(400)
  })
})

describe('client aborts', () => {
  it('reach the backend and stop a stream', async () => {
    const before = { ...backend.stats }
    const controller = new AbortController()
    const response = await postJson(url, { ...chat, stream: true }, {}, controller.signal)
    const reader = response.body!.getReader()
    await reader.read()
    expect(backend.stats.inFlight).toBe(1)
    controller.abort()
    await until(() => backend.stats.aborted === before.aborted + 1 && backend.stats.inFlight === 0)
    expect(backend.stats.requests).toBe(before.requests + 1)
  })

  it('reach the backend while a non-streamed answer is being paced', async () => {
    const before = backend.stats.aborted
    const controller = new AbortController()
    const pending = postJson(url, chat, {}, controller.signal)
    await until(() => backend.stats.inFlight === 1)
    controller.abort()
    await expect(pending).rejects.toThrow()
    await until(() => backend.stats.aborted === before + 1 && backend.stats.inFlight === 0)
  })

  it('are not counted for completed requests or injected deaths', async () => {
    const before = backend.stats.aborted
    const short = { ...chat, max_tokens: 5, stream: true }
    await (await postJson(url, short)).text()
    await drain(await postJson(url, short, { [FAULT_HEADER]: 'die-mid-stream' }))
    await until(() => backend.stats.inFlight === 0)
    expect(backend.stats.aborted).toBe(before)
  })
})
