import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { type Completion, json, postJson, sseEvents } from './test-support.ts'
import { countTokens, tokenize } from './tokenizer.ts'

let backend: DevBackend
let url: string
beforeAll(async () => {
  backend = await startDevBackend()
  url = `${backend.url}/v1/completions`
})
afterAll(() => backend.close())

describe('completions', () => {
  it('completes a string prompt, 16 tokens by default, with true usage', async () => {
    const response = await postJson(url, { model: DEV_CHAT_MODEL, prompt: 'Once upon a time' })
    const out = await json<Completion>(response)
    expect(out).toMatchObject({ object: 'text_completion', model: DEV_CHAT_MODEL })
    expect(out.id).toMatch(/^cmpl-/)
    expect(out.choices[0]!.finish_reason).toBe('length')
    expect(tokenize(out.choices[0]!.text)).toHaveLength(16)
    expect(out.usage).toEqual({
      prompt_tokens: countTokens('Once upon a time'),
      completion_tokens: 16,
      total_tokens: countTokens('Once upon a time') + 16,
    })
  })

  it('gives one choice per prompt of an array, and counts token-id prompts as given', async () => {
    const out = await json<Completion>(await postJson(url, { prompt: ['first', 'second'], max_tokens: 4, n: 2 }))
    expect(out.choices.map((c) => c.index)).toEqual([0, 1, 2, 3])
    expect(new Set(out.choices.map((c) => c.text)).size).toBe(4)
    const ids = await json<Completion>(await postJson(url, { prompt: [1, 2, 3, 4, 5], max_tokens: 3 }))
    expect(ids.usage.prompt_tokens).toBe(5)
  })

  it('streams the same text, with a usage chunk when asked', async () => {
    const body = { prompt: 'Dear café,', max_tokens: 12, logprobs: 2 }
    const whole = await json<Completion>(await postJson(url, body))
    const response = await postJson(url, { ...body, stream: true, stream_options: { include_usage: true } })
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const { chunks, done } = sseEvents<Completion>(await response.text())
    expect(done).toBe(true)
    const text = chunks.flatMap((c) => c.choices.map((choice) => choice.text)).join('')
    expect(text).toBe(whole.choices[0]!.text)
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: whole.usage })
    expect(chunks.at(-2)!.choices[0]).toMatchObject({ text: '', finish_reason: 'length' })
    const offsets = chunks.flatMap((c) => c.choices.flatMap((choice) => choice.logprobs?.text_offset ?? []))
    expect(offsets).toEqual(whole.choices[0]!.logprobs!.text_offset)
  })
})
