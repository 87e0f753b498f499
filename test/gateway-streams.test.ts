import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>

beforeAll(async () => {
  stack = await startTestStack({ tokenDelayMs: 5 })
})
afterAll(async () => {
  await stack?.dispose()
})

const chatBody = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content }], ...extra })

function events(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6))
}

describe('gateway streaming', () => {
  it('relays SSE with the right headers and ends with exactly [DONE]', async () => {
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
      body: chatBody('stream please', { stream: true }),
    })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.headers.get('content-encoding')).toBeNull()
    const text = await res.text()
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
    const chunks = events(text)
      .slice(0, -1)
      .map((e) => JSON.parse(e))
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1)
    expect(chunks[0].choices[0].delta.role).toBe('assistant')
  })

  it('aborts the provider request within a second when the client goes away mid-stream', async () => {
    const abortedBefore = stack.backend.stats.aborted
    const controller = new AbortController()
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
      body: chatBody('a long story', { stream: true, max_tokens: 4000 }),
      signal: controller.signal,
    })
    const reader = res.body!.getReader()
    for (let i = 0; i < 3; i++) await reader.read()
    controller.abort()
    const started = Date.now()
    while (stack.backend.stats.aborted === abortedBefore && Date.now() - started < 1000)
      await new Promise((r) => setTimeout(r, 10))
    expect(stack.backend.stats.aborted).toBe(abortedBefore + 1)
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it("gives an aborted stream's receipt a final state within seconds: what was delivered, billed, and why unverified", async () => {
    const controller = new AbortController()
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
      body: chatBody('another long story', { stream: true, max_tokens: 4000 }),
      signal: controller.signal,
    })
    const id = res.headers.get('x-request-id')!
    const reader = res.body!.getReader()
    let received = 0
    for (let i = 0; i < 3; i++) received += (await reader.read()).value?.length ?? 0
    controller.abort()
    type Receipt = { status: number; fee: string; delivered_bytes: number; verification: Record<string, unknown> }
    const receipt = async () =>
      (await (
        await fetch(`${stack.baseURL}/receipts/${id}`, { headers: { authorization: 'Bearer sk-zg-dev' } })
      ).json()) as Receipt
    await expect.poll(async () => (await receipt()).verification?.status, { timeout: 5_000 }).toBe('unverifiable')
    const final = await receipt()
    expect(final.status).toBe(499)
    expect(final.fee).toBe('0')
    expect(final.delivered_bytes).toBeGreaterThanOrEqual(received)
    expect(final.verification.detail).toMatch(
      /^the client closed the stream after \d+ bytes; the provider reported no usage before that, so no fee is recorded; /,
    )
  })

  it('aborts the provider request when the client goes away before the answer starts', async () => {
    const abortedBefore = stack.backend.stats.aborted
    const controller = new AbortController()
    // Not streamed, 4000 tokens at 5 ms: the provider would answer in 20 s.
    const pending = fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
      body: chatBody('a long story', { max_tokens: 4000 }),
      signal: controller.signal,
    })
    await new Promise((r) => setTimeout(r, 200))
    controller.abort()
    await expect(pending).rejects.toThrow()
    const started = Date.now()
    while (stack.backend.stats.aborted === abortedBefore && Date.now() - started < 1000)
      await new Promise((r) => setTimeout(r, 10))
    expect(stack.backend.stats.aborted).toBe(abortedBefore + 1)
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('completes 50 concurrent streams with no cross-talk', async () => {
    const run = async (i: number) => {
      const prompt = `stream number ${i} about topic ${i * 7}`
      const [streamed, whole] = await Promise.all([
        fetch(`${stack.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
          body: chatBody(prompt, { stream: true, max_tokens: 40 }),
        }).then((r) => r.text()),
        fetch(`${stack.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
          body: chatBody(prompt, { max_tokens: 40 }),
        }).then((r) => r.json() as Promise<{ choices: Array<{ message: { content: string } }> }>),
      ])
      const evs = events(streamed)
      expect(evs.at(-1)).toBe('[DONE]')
      const chunks = evs.slice(0, -1).map((e) => JSON.parse(e))
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1)
      return {
        content: chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''),
        expected: whole.choices[0]!.message.content,
      }
    }
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => run(i)))
    for (const r of results) expect(r.content).toBe(r.expected)
    expect(new Set(results.map((r) => r.content)).size).toBe(50)
  })

  it('ends a stream whose provider dies mid-way with an OpenAI error event, never [DONE]', async () => {
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
      body: chatBody('this one will break', { stream: true, max_tokens: 4000 }),
    })
    const provider = res.headers.get('x-zg-provider')!
    const reader = res.body!.getReader()
    await reader.read()
    // The provider node serving it goes down hard, connections and all.
    await stack.nodes.find((n) => n.address === provider)!.node.close()
    let text = ''
    const decoder = new TextDecoder()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    const last = events(text).at(-1)!
    expect(last).not.toBe('[DONE]')
    expect(JSON.parse(last).error).toMatchObject({ code: 'upstream_error', type: 'server_error' })
  })
})
