import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>

beforeAll(async () => {
  // A backend slow to its first token, and a gateway that speaks up every 100 ms of silence.
  stack = await startTestStack({ firstTokenDelayMs: 700, keepAliveMs: 100 })
})
afterAll(async () => {
  await stack?.dispose()
})

describe('keep-alive while a provider is silent', () => {
  it('sends SSE comments during the silence; SDK output is unaffected', async () => {
    const body = JSON.stringify({
      model: DEV_CHAT_MODEL,
      messages: [{ role: 'user', content: 'take your time' }],
      stream: true,
      max_tokens: 8,
    })
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'application/json' },
      body,
    })
    const text = await res.text()
    expect(text.match(/^: keep-alive$/gm)?.length).toBeGreaterThanOrEqual(3)
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)

    const client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-zg-dev', maxRetries: 0 })
    const stream = await client.chat.completions.create({
      model: DEV_CHAT_MODEL,
      messages: [{ role: 'user', content: 'take your time' }],
      stream: true,
      max_tokens: 8,
    })
    let content = ''
    for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? ''
    const whole = await client.chat.completions.create({
      model: DEV_CHAT_MODEL,
      messages: [{ role: 'user', content: 'take your time' }],
      max_tokens: 8,
    })
    expect(content).toBe(whole.choices[0]!.message.content)
  })
})
