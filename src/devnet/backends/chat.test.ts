import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { renderChatPrompt } from './chat-template.ts'
import { DEV_CHAT_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { type ChatCompletion, type ErrorBody, json, postJson, readChatStream, sseEvents } from './test-support.ts'
import { countTokens, tokenize } from './tokenizer.ts'

let backend: DevBackend
let url: string
beforeAll(async () => {
  backend = await startDevBackend({ maxContextTokens: 512 })
  url = `${backend.url}/v1/chat/completions`
})
afterAll(() => backend.close())

const messages = [
  { role: 'system', content: 'You are a dev model.' },
  { role: 'user', content: 'Tell me about the café in Zürich 🦊' },
]

async function complete(body: Record<string, unknown>) {
  const response = await postJson(url, { model: DEV_CHAT_MODEL, messages, ...body })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^application\/json/)
  return json<ChatCompletion>(response)
}

/** A choice's text content (and a failed test if it has none). */
function text(out: ChatCompletion, index = 0): string {
  const content = out.choices[index]?.message.content
  if (typeof content !== 'string') throw new Error(`choice ${index} has no text content`)
  return content
}

async function stream(body: Record<string, unknown>) {
  const response = await postJson(url, { model: DEV_CHAT_MODEL, messages, ...body, stream: true })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
  return readChatStream(response)
}

describe('chat completions', () => {
  it('answers in the OpenAI shape with true token counts', async () => {
    const out = await complete({})
    expect(out).toMatchObject({ object: 'chat.completion', model: DEV_CHAT_MODEL })
    expect(out.id).toMatch(/^chatcmpl-/)
    expect(Number.isInteger(out.created)).toBe(true)
    expect(out.choices[0]).toMatchObject({ index: 0, finish_reason: 'stop', message: { role: 'assistant' } })
    expect(text(out).length).toBeGreaterThan(0)
    expect(out.usage).toEqual({
      prompt_tokens: countTokens(renderChatPrompt(messages)),
      completion_tokens: countTokens(text(out)),
      total_tokens: out.usage.prompt_tokens + out.usage.completion_tokens,
    })
  })

  it('is deterministic, depends on the conversation and on seed', async () => {
    const a = text(await complete({}))
    expect(text(await complete({}))).toBe(a)
    expect(text(await complete({ seed: 7 }))).not.toBe(a)
    const other = await postJson(url, { messages: [{ role: 'user', content: 'Something else' }] })
    expect(text(await json<ChatCompletion>(other))).not.toBe(a)
  })

  it('streams exactly the non-streamed content, multi-byte characters included', async () => {
    const whole = text(await complete({}))
    expect(Buffer.byteLength(whole)).toBeGreaterThan(whole.length)
    const streamed = await stream({})
    expect(streamed.done).toBe(true)
    expect(Buffer.from(streamed.content[0]!, 'utf8').equals(Buffer.from(whole, 'utf8'))).toBe(true)
    const { chunks } = streamed
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1)
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1)
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && !('usage' in c))).toBe(true)
    expect(chunks[0]!.choices[0]).toMatchObject({ delta: { role: 'assistant', content: '' }, finish_reason: null })
    // One chunk per token, then an empty delta with the finish reason.
    expect(chunks.slice(1, -1).map((c) => c.choices[0]!.delta.content)).toEqual(tokenize(whole))
    expect(chunks.at(-1)!.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' })
  })

  it('sends a usage chunk with no choices last, and usage null before it, when include_usage is set', async () => {
    const whole = await complete({ max_tokens: 7 })
    const { chunks } = await stream({ max_tokens: 7, stream_options: { include_usage: true } })
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: whole.usage })
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true)
  })

  it('honours max_tokens and max_completion_tokens with finish reason length', async () => {
    for (const limit of [{ max_tokens: 5 }, { max_completion_tokens: 5 }]) {
      const out = await complete(limit)
      expect(out.choices[0]!.finish_reason).toBe('length')
      expect(out.usage.completion_tokens).toBe(5)
      expect(tokenize(text(out))).toHaveLength(5)
      const streamed = await stream(limit)
      expect(streamed.content[0]).toBe(out.choices[0]!.message.content)
      expect(streamed.chunks.at(-1)!.choices[0]!.finish_reason).toBe('length')
    }
  })

  it('stops before a stop string', async () => {
    const whole = text(await complete({}))
    const stop = tokenize(whole).slice(6, 8).join('')
    const out = await complete({ stop: [stop] })
    expect(out.choices[0]).toMatchObject({
      finish_reason: 'stop',
      message: { content: whole.slice(0, whole.indexOf(stop)) },
    })
    expect((await stream({ stop })).content[0]).toBe(out.choices[0]!.message.content)
  })

  it('gives n distinct choices, streamed interleaved by index', async () => {
    const out = await complete({ n: 3 })
    expect(out.choices.map((c) => c.index)).toEqual([0, 1, 2])
    expect(new Set(out.choices.map((c) => c.message.content)).size).toBe(3)
    const streamed = await stream({ n: 3 })
    expect(streamed.content).toEqual(out.choices.map((c) => c.message.content))
    const completion = out.choices.reduce((sum, c) => sum + countTokens(c.message.content ?? ''), 0)
    expect(out.usage.completion_tokens).toBe(completion)
  })

  it('returns logprobs with bytes and top alternatives', async () => {
    const out = await complete({ logprobs: true, top_logprobs: 2, max_tokens: 6 })
    const content = out.choices[0]!.logprobs!.content
    expect(content.map((e) => e.token).join('')).toBe(text(out))
    for (const entry of content) {
      expect(entry.logprob).toBeLessThan(0)
      expect(entry.bytes).toEqual([...Buffer.from(entry.token, 'utf8')])
      expect(entry.top_logprobs).toHaveLength(2)
      expect(entry.top_logprobs[0]).toMatchObject({ token: entry.token, logprob: entry.logprob })
      expect(entry.top_logprobs[1]!.logprob).toBeLessThan(entry.logprob)
      expect(entry.top_logprobs.reduce((sum, t) => sum + Math.exp(t.logprob), 0)).toBeLessThanOrEqual(1)
    }
    const streamed = await stream({ logprobs: true, top_logprobs: 2, max_tokens: 6 })
    const tokenChunks = streamed.chunks.filter((c) => c.choices[0]?.delta.content)
    expect(tokenChunks.map((c) => c.choices[0]!.logprobs!.content[0])).toEqual(content)
  })

  it('writes valid JSON for json_object, and an object matching the schema for json_schema', async () => {
    const object = await complete({ response_format: { type: 'json_object' } })
    expect(typeof JSON.parse(text(object))).toBe('object')
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string' },
        age: { type: 'integer' },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['name', 'age', 'tags'],
      additionalProperties: false,
    }
    const out = await complete({
      response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } },
    })
    const value = JSON.parse(text(out))
    expect(typeof value.name).toBe('string')
    expect(Number.isInteger(value.age)).toBe(true)
    expect(Array.isArray(value.tags)).toBe(true)
    const structured = await complete({ structured_outputs: { choice: ['yes', 'no'] } })
    expect(['yes', 'no']).toContain(structured.choices[0]!.message.content)
  })

  it('accepts and ignores vLLM extras and unknown fields', async () => {
    const plain = await complete({})
    const extras = await complete({
      top_k: 20,
      min_p: 0.1,
      repetition_penalty: 1.1,
      chat_template_kwargs: { enable_thinking: false },
      temperature: 1.5,
      user: 'u',
      metadata: { a: 'b' },
      store: false,
      stream: false,
    })
    expect(extras.choices[0]!.message.content).toBe(plain.choices[0]!.message.content)
  })
})

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] },
    },
  },
]

describe('tool calls', () => {
  it('calls a tool after a user message, then answers in text after the tool result', async () => {
    const first = await complete({ tools, parallel_tool_calls: false })
    const choice = first.choices[0]!
    expect(choice.finish_reason).toBe('tool_calls')
    expect(choice.message.content).toBeNull()
    expect(choice.message.tool_calls).toHaveLength(1)
    const call = choice.message.tool_calls[0]!
    expect(call).toMatchObject({ type: 'function' })
    expect(call.id).toMatch(/^call_/)
    const tool = tools.find((t) => t.function.name === call.function.name)!
    const args = JSON.parse(call.function.arguments)
    for (const key of tool.function.parameters.required) expect(typeof args[key]).toBe('string')

    const followUp = await postJson(url, {
      messages: [...messages, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' }],
      tools,
    })
    const answer = await json<ChatCompletion>(followUp)
    expect(answer.choices[0]!.finish_reason).toBe('stop')
    expect(text(answer).length).toBeGreaterThan(0)
  })

  it('calls two tools in parallel, streamed as OpenAI tool-call deltas', async () => {
    const whole = await complete({ tools })
    const calls = whole.choices[0]!.message.tool_calls
    expect(calls).toHaveLength(2)
    expect(new Set(calls.map((c) => c.id)).size).toBe(2)
    expect(new Set(calls.map((c) => c.function.name)).size).toBe(2)

    const { chunks } = await stream({ tools })
    const assembled: Array<{ id?: string; name?: string; arguments: string }> = []
    for (const chunk of chunks) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        assembled[delta.index] ??= { arguments: '' }
        const call = assembled[delta.index]!
        if (delta.id) Object.assign(call, { id: delta.id, name: delta.function.name })
        call.arguments += delta.function.arguments
      }
    }
    expect(assembled.map((c) => [c.name, c.arguments])).toEqual(
      calls.map((c) => [c.function.name, c.function.arguments]),
    )
    expect(chunks.at(-1)!.choices[0]).toMatchObject({ delta: {}, finish_reason: 'tool_calls' })
  })

  it('does not call tools when tool_choice is none, and calls the named one', async () => {
    expect((await complete({ tools, tool_choice: 'none' })).choices[0]!.finish_reason).toBe('stop')
    const named = await complete({ tools, tool_choice: { type: 'function', function: { name: 'get_time' } } })
    expect(named.choices[0]!.message.tool_calls.map((c) => c.function.name)).toEqual(['get_time'])
  })
})

describe('chat errors', () => {
  it('rejects a prompt over the context length with vLLM error', async () => {
    const long = 'word '.repeat(600)
    const response = await postJson(url, { messages: [{ role: 'user', content: long }] })
    expect(response.status).toBe(400)
    const body = await json<ErrorBody>(response)
    expect(body.error).toMatchObject({ type: 'BadRequestError', code: 400 })
    expect(body.error.message).toMatch(
      /^This model's maximum context length is 512 tokens\. However, you requested \d+ tokens/,
    )
    const tooMuch = await postJson(url, { messages, max_tokens: 600 })
    expect(tooMuch.status).toBe(400)
  })

  it('rejects a streamed request before streaming, with a real HTTP error', async () => {
    const response = await postJson(url, { messages: [{ role: 'user', content: 'word '.repeat(600) }], stream: true })
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
  })

  it('answers an unknown model with 404 and a bad body with 400', async () => {
    const unknown = await postJson(url, { model: 'gpt-4o', messages })
    expect(unknown.status).toBe(404)
    expect((await json<ErrorBody>(unknown)).error).toEqual({
      message: 'The model `gpt-4o` does not exist.',
      type: 'NotFoundError',
      param: 'model',
      code: 404,
    })
    const malformed = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":',
    })
    expect(malformed.status).toBe(400)
    const noMessages = await postJson(url, { model: DEV_CHAT_MODEL })
    expect(noMessages.status).toBe(400)
    expect((await json<ErrorBody>(noMessages)).error.param).toBe('messages')
  })
})

describe('sse framing', () => {
  it('ends with [DONE] and nothing after', async () => {
    const response = await postJson(url, { messages, stream: true, max_tokens: 2 })
    const text = await response.text()
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
    expect(sseEvents(text).done).toBe(true)
  })
})
