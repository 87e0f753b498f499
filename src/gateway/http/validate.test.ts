import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { readJsonBody } from './body.ts'
import { expectOpenAiError } from './expect-openai-error.ts'
import { errorHandler, GatewayError } from './openai-error.ts'
import { requestId } from './request-id.ts'
import {
  chatCompletionSchema,
  validateChatCompletion,
  validateCompletion,
  validateEmbeddings,
  validateImageGeneration,
  validateTranscriptionFields,
  wellFormedChatBody,
} from './validate.ts'

const messages = [{ role: 'user', content: 'hi' }]

/** The 400 a validator throws, as a plain object. */
function rejection(run: () => unknown): { status: number; param: string | null; message: string } {
  try {
    run()
  } catch (err) {
    if (err instanceof GatewayError) return { status: err.status, param: err.param, message: err.message }
    throw err
  }
  throw new Error('expected the body to be rejected')
}

describe('wellFormedChatBody', () => {
  /** Bodies made of every field's likely and unlikely values, drawn with a fixed seed. */
  function* bodies(count: number): Generator<Record<string, unknown>> {
    const ints = [undefined, null, 0, 1, 2, -1, 1.5, '2', 2 ** 53, true, Number.NaN]
    const pools: Record<string, unknown[]> = {
      model: [undefined, 'm', 'meta-llama/Llama-3.1-8B', '', 3, null, ['m']],
      messages: [
        undefined,
        [],
        messages,
        [{ role: 'user' }, { role: 'assistant', content: null, tool_calls: [] }],
        [{ role: '' }],
        [{ content: 'x' }],
        [{ role: 5 }],
        [{ role: 'bogus', content: 'x' }],
        [
          { role: 'developer', content: 'x' },
          { role: 'tool', content: 'y', tool_call_id: 't' },
        ],
        [null],
        ['x'],
        [[]],
        { role: 'user' },
        'hi',
      ],
      stream: [undefined, true, false, null, 'true', 1, 0],
      stream_options: [
        undefined,
        null,
        {},
        { include_usage: true },
        { include_usage: false, continuous_usage_stats: true },
        { include_usage: null },
        { include_usage: 'yes' },
        [],
        'x',
      ],
      n: ints,
      max_tokens: ints,
      max_completion_tokens: ints,
      temperature: [undefined, 0.5, 0, 2, 'hot', 2.5, -0.1, null],
      top_p: [undefined, 1, 0.9, 1.5, -1, '1'],
      presence_penalty: [undefined, 0, -2, 2.1],
      top_logprobs: [undefined, 5, 0, 20, 21, 1.5],
      logprobs: [undefined, true, false, 'yes'],
      seed: [undefined, 7, -3, 1.5, '7'],
    }
    let seed = 42
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    for (let i = 0; i < count; i++) {
      const body: Record<string, unknown> = {}
      for (const [field, pool] of Object.entries(pools)) {
        // Mostly the common values (the first few of each pool), so that many bodies are well formed.
        const value = pool[Math.floor(next() < 0.7 ? next() * Math.min(4, pool.length) : next() * pool.length)]
        if (value !== undefined) body[field] = value
      }
      yield body
    }
  }

  it('never accepts what the schema refuses, and reads what it accepts as the schema does', () => {
    let accepted = 0
    let deferred = 0
    for (const body of bodies(20_000)) {
      const quick = wellFormedChatBody(body)
      const full = chatCompletionSchema.safeParse(body)
      if (!quick) {
        if (full.success) deferred++
        continue
      }
      accepted++
      expect(full.success, JSON.stringify(body)).toBe(true)
      const slow = full.data!
      for (const field of ['model', 'stream', 'n', 'max_tokens', 'max_completion_tokens'] as const)
        expect(quick[field]).toEqual(slow[field])
      expect(quick.stream_options?.include_usage).toEqual(slow.stream_options?.include_usage)
      expect(quick.messages).toEqual(slow.messages)
    }
    // Not vacuous: many bodies pass the quick check; and every form here that the schema accepts passes it too.
    expect(accepted).toBeGreaterThan(100)
    expect(deferred).toBe(0)
  })
})

describe('validateChatCompletion', () => {
  it('returns the view the router and meter need', () => {
    expect(validateChatCompletion({ model: 'm', messages })).toEqual({
      model: 'm',
      stream: false,
      includeUsage: false,
      messages,
      n: 1,
      maxTokens: undefined,
    })
    const view = validateChatCompletion({
      model: 'm',
      messages,
      stream: true,
      stream_options: { include_usage: true },
      n: 2,
      max_tokens: 100,
    })
    expect(view).toMatchObject({ stream: true, includeUsage: true, n: 2, maxTokens: 100 })
  })

  it('reads max_completion_tokens as max_tokens (acceptance case 15)', () => {
    expect(validateChatCompletion({ model: 'm', messages, max_completion_tokens: 7 }).maxTokens).toBe(7)
    expect(validateChatCompletion({ model: 'm', messages, max_completion_tokens: 7, max_tokens: 9 }).maxTokens).toBe(7)
  })

  it('includes usage only when streaming and asked', () => {
    expect(validateChatCompletion({ model: 'm', messages, stream: true }).includeUsage).toBe(false)
    expect(validateChatCompletion({ model: 'm', messages, stream: true, stream_options: {} }).includeUsage).toBe(false)
  })

  it('accepts and preserves everything it does not check (acceptance cases 13, 16)', () => {
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }], name: 'u', custom: 1 }],
      top_k: 20,
      min_p: 0.1,
      repetition_penalty: 1.1,
      chat_template_kwargs: { enable_thinking: false },
      structured_outputs: { regex: 'a+' },
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: 'auto',
      response_format: { type: 'json_object' },
      logprobs: true,
      top_logprobs: 2,
      user: 'u',
      metadata: { a: 'b' },
      store: false,
      service_tier: 'auto',
      seed: 1,
      parallel_tool_calls: false,
      stream: false,
      n: null,
      max_tokens: null,
      stream_options: null,
    }
    const copy = structuredClone(body)
    const view = validateChatCompletion(body)
    expect(body).toEqual(copy)
    expect(view.rewrite).toBeUndefined()
    expect(view.messages[0]).toEqual(copy.messages[0])
  })

  it.each([
    [{ messages }, 'model', 'Missing required parameter'],
    [{ model: 42, messages }, 'model', 'expected a string'],
    [{ model: '', messages }, 'model', 'non-empty'],
    [{ model: 'm' }, 'messages', 'Missing required parameter'],
    [{ model: 'm', messages: 'hi' }, 'messages', 'expected an array'],
    [{ model: 'm', messages: {} }, 'messages', 'expected an array'],
    [{ model: 'm', messages: [] }, 'messages', 'at least 1'],
    [{ model: 'm', messages: ['hi'] }, 'messages[0]', 'expected an object'],
    [{ model: 'm', messages: [{ content: 'hi' }] }, 'messages[0].role', 'Missing required parameter'],
    [{ model: 'm', messages, n: 0 }, 'n', "Invalid 'n'"],
    [{ model: 'm', messages, n: 1.5 }, 'n', 'expected an integer'],
    [{ model: 'm', messages, n: '2' }, 'n', 'expected an integer'],
    [{ model: 'm', messages, stream: 'true' }, 'stream', 'expected a boolean'],
    [{ model: 'm', messages, n: 1e20 }, 'n', "Invalid 'n'"],
    [{ model: 'm', messages, max_tokens: -1 }, 'max_tokens', "Invalid 'max_tokens'"],
    [{ model: 'm', messages, max_completion_tokens: 'x' }, 'max_completion_tokens', 'expected an integer'],
    [{ model: 'm', messages, stream_options: { include_usage: true } }, 'stream_options', "'stream' is true"],
    [{ model: 'm', messages, stream: true, stream_options: { include_usage: 1 } }, 'stream_options.include_usage', ''],
    [{ model: 'm', messages, temperature: 3 }, 'temperature', "Invalid 'temperature': expected a value <= 2"],
    [{ model: 'm', messages, temperature: -0.5 }, 'temperature', 'expected a value >= 0'],
    [{ model: 'm', messages, top_p: 1.5 }, 'top_p', 'expected a value <= 1'],
    [{ model: 'm', messages, frequency_penalty: -3 }, 'frequency_penalty', 'expected a value >= -2'],
    [{ model: 'm', messages, presence_penalty: 2.5 }, 'presence_penalty', 'expected a value <= 2'],
    [{ model: 'm', messages, logprobs: true, top_logprobs: 30 }, 'top_logprobs', 'expected a value <= 20'],
    [{ model: 'm', messages, n: 129 }, 'n', 'expected a value <= 128'],
    [{ model: 'm', messages, seed: 1.5 }, 'seed', 'expected an integer'],
    [
      { model: 'm', messages: [{ role: 'bogus', content: 'hi' }] },
      'messages[0].role',
      "Invalid value for 'messages[0].role'",
    ],
  ])('rejects %j with param %s', (body, param, text) => {
    const error = rejection(() => validateChatCompletion(body as Record<string, unknown>))
    expect(error).toMatchObject({ status: 400, param })
    expect(error.message).toContain(text)
  })

  describe('legacy guided_* fields (acceptance case 14)', () => {
    it('translates guided_json into structured_outputs.json and keeps the rest', () => {
      const schema = { type: 'object', properties: { a: { type: 'string' } } }
      const body = { model: 'm', messages, guided_json: schema, top_k: 3, guided_decoding_backend: 'xgrammar' }
      const view = validateChatCompletion(body)
      expect(view.rewrite).toEqual({
        model: 'm',
        messages,
        top_k: 3,
        guided_decoding_backend: 'xgrammar',
        structured_outputs: { json: schema },
      })
      expect(body.guided_json).toBe(schema)
    })

    it.each([
      ['guided_regex', '[a-z]+', 'regex'],
      ['guided_choice', ['yes', 'no'], 'choice'],
      ['guided_grammar', 'root ::= "a"', 'grammar'],
      ['guided_json', '{"type":"object"}', 'json'],
    ])('translates %s', (field, value, target) => {
      const view = validateChatCompletion({ model: 'm', messages, [field]: value })
      expect(view.rewrite?.structured_outputs).toEqual({ [target]: value })
      expect(view.rewrite).not.toHaveProperty(field)
    })

    it('merges into an existing structured_outputs', () => {
      const view = validateChatCompletion({
        model: 'm',
        messages,
        guided_choice: ['a', 'b'],
        guided_whitespace_pattern: ' ',
        structured_outputs: { disable_any_whitespace: true },
      })
      expect(view.rewrite?.structured_outputs).toEqual({
        disable_any_whitespace: true,
        choice: ['a', 'b'],
        whitespace_pattern: ' ',
      })
    })

    it('ignores a null legacy field', () => {
      expect(validateChatCompletion({ model: 'm', messages, guided_json: null }).rewrite).toBeUndefined()
    })

    it.each([
      [{ guided_json: {}, guided_regex: 'a' }, 'guided_json', 'Only one kind'],
      [{ guided_regex: 'a', structured_outputs: { json: {} } }, 'guided_regex', 'Only one kind'],
      [{ guided_json: {}, structured_outputs: { json: { type: 'string' } } }, 'guided_json', 'conflicts'],
      [{ guided_choice: 'a' }, 'guided_choice', 'expected an array'],
      [{ guided_choice: [] }, 'guided_choice', 'at least 1'],
      [{ guided_regex: 5 }, 'guided_regex', 'expected a string'],
      [{ guided_json: 5 }, 'guided_json', 'JSON schema'],
      [{ guided_json: {}, structured_outputs: 'x' }, 'structured_outputs', 'expected an object'],
    ])('rejects %j rather than guess', (extra, param, text) => {
      const error = rejection(() => validateChatCompletion({ model: 'm', messages, ...extra }))
      expect(error).toMatchObject({ status: 400, param })
      expect(error.message).toContain(text)
    })
  })
})

describe('validateCompletion', () => {
  it.each([['say hi'], [['a', 'b']], [[1, 2, 3]], [[[1], [2, 3]]]])('accepts the prompt %j', (prompt) => {
    const view = validateCompletion({ model: 'm', prompt, max_tokens: 0, echo: true })
    expect(view).toMatchObject({ model: 'm', stream: false, n: 1, prompt, maxTokens: 0 })
  })

  it('accepts prompt_embeds instead of a prompt', () => {
    expect(validateCompletion({ model: 'm', prompt_embeds: 'base64' }).model).toBe('m')
  })

  it('translates legacy guided fields too', () => {
    const view = validateCompletion({ model: 'm', prompt: 'x', guided_regex: 'a' })
    expect(view.rewrite).toEqual({ model: 'm', prompt: 'x', structured_outputs: { regex: 'a' } })
  })

  it.each([
    [{ prompt: 'x' }, 'model'],
    [{ model: 'm' }, 'prompt'],
    [{ model: 'm', prompt: 5 }, 'prompt'],
    [{ model: 'm', prompt: [] }, 'prompt'],
    [{ model: 'm', prompt: [true] }, 'prompt'],
    [{ model: 'm', prompt: 'x', stream: 1 }, 'stream'],
    [{ model: 'm', prompt: 'x', n: -2 }, 'n'],
  ])('rejects %j with param %s', (body, param) => {
    expect(rejection(() => validateCompletion(body as Record<string, unknown>))).toMatchObject({ status: 400, param })
  })

  it('includes usage when streaming and asked', () => {
    const view = validateCompletion({ model: 'm', prompt: 'x', stream: true, stream_options: { include_usage: true } })
    expect(view.includeUsage).toBe(true)
  })
})

describe('validateEmbeddings', () => {
  it('reads the encoding format, defaulting to float', () => {
    expect(validateEmbeddings({ model: 'e', input: 'hi' })).toEqual({
      model: 'e',
      stream: false,
      includeUsage: false,
      encodingFormat: 'float',
    })
    expect(validateEmbeddings({ model: 'e', input: ['a', 'b'], encoding_format: 'base64' }).encodingFormat).toBe(
      'base64',
    )
  })

  it('accepts token ids and chat-style messages', () => {
    expect(validateEmbeddings({ model: 'e', input: [[1, 2]] }).model).toBe('e')
    expect(validateEmbeddings({ model: 'e', messages }).model).toBe('e')
  })

  it.each([
    [{ input: 'x' }, 'model'],
    [{ model: 'e' }, 'input'],
    [{ model: 'e', input: {} }, 'input'],
    [{ model: 'e', input: 'x', encoding_format: 'int8' }, 'encoding_format'],
    [{ model: 'e', input: 'x', dimensions: 0 }, 'dimensions'],
  ])('rejects %j with param %s', (body, param) => {
    expect(rejection(() => validateEmbeddings(body as Record<string, unknown>))).toMatchObject({ status: 400, param })
  })
})

describe('validateImageGeneration', () => {
  it('reads n and response_format', () => {
    expect(validateImageGeneration({ model: 'i', prompt: 'a cat', n: 2, response_format: 'b64_json' })).toEqual({
      model: 'i',
      stream: false,
      includeUsage: false,
      n: 2,
      responseFormat: 'b64_json',
    })
    expect(validateImageGeneration({ model: 'i', prompt: 'a cat', num_inference_steps: 4 }).responseFormat).toBe(
      undefined,
    )
  })

  it.each([
    [{ prompt: 'x' }, 'model'],
    [{ model: 'i' }, 'prompt'],
    [{ model: 'i', prompt: '' }, 'prompt'],
    [{ model: 'i', prompt: 'x', response_format: 'png' }, 'response_format'],
    [{ model: 'i', prompt: 'x', n: 0 }, 'n'],
    [{ model: 'i', prompt: 'x', size: 1024 }, 'size'],
  ])('rejects %j with param %s', (body, param) => {
    expect(rejection(() => validateImageGeneration(body as Record<string, unknown>))).toMatchObject({
      status: 400,
      param,
    })
  })
})

describe('validateTranscriptionFields', () => {
  it('reads the multipart fields', () => {
    expect(validateTranscriptionFields({ model: 'w' })).toEqual({
      model: 'w',
      stream: false,
      includeUsage: false,
      responseFormat: 'json',
    })
    const view = validateTranscriptionFields({
      model: 'w',
      response_format: 'srt',
      stream: 'true',
      stream_include_usage: 'true',
      temperature: '0.2',
      language: 'en',
      'timestamp_granularities[]': 'word',
    })
    expect(view).toEqual({ model: 'w', stream: true, includeUsage: true, responseFormat: 'srt' })
  })

  it.each(['json', 'text', 'srt', 'verbose_json', 'vtt'])('accepts response_format %s', (format) => {
    expect(validateTranscriptionFields({ model: 'w', response_format: format }).responseFormat).toBe(format)
  })

  it.each([
    [{}, 'model'],
    [{ model: 'w', response_format: 'diarized_json' }, 'response_format'],
    [{ model: 'w', stream: 'yes' }, 'stream'],
    [{ model: 'w', temperature: 'hot' }, 'temperature'],
    [{ model: 'w', temperature: '' }, 'temperature'],
  ])('rejects %j with param %s', (fields, param) => {
    expect(rejection(() => validateTranscriptionFields(fields))).toMatchObject({ status: 400, param })
  })
})

describe('validation through the app', () => {
  function app(seen: unknown[]) {
    const app = new Hono()
    app.use('*', requestId())
    app.onError(errorHandler(() => {}))
    app.post('/v1/chat/completions', async (c) => {
      const { json } = await readJsonBody(c, { limit: 1 << 20 })
      const view = validateChatCompletion(json)
      seen.push(view.rewrite ?? json)
      return c.json({ ok: true })
    })
    return app
  }

  it('answers acceptance case 9 bodies with OpenAI 400s and never calls upstream', async () => {
    const seen: unknown[] = []
    for (const [body, param] of [
      ['["model"]', null],
      ['"hello"', null],
      ['{"model":"m"}', 'messages'],
      ['{"model":"m","messages":"hi"}', 'messages'],
      ['{"model":', null],
    ] as const) {
      const res = await app(seen).request('/v1/chat/completions', { method: 'POST', body })
      expect((await expectOpenAiError(res, 400)).param).toBe(param)
    }
    expect(seen).toEqual([])
  })

  it('forwards the translated body for legacy guided_choice', async () => {
    const seen: unknown[] = []
    const body = JSON.stringify({ model: 'm', messages, guided_choice: ['a', 'b'], min_p: 0.2 })
    const res = await app(seen).request('/v1/chat/completions', { method: 'POST', body })
    expect(res.status).toBe(200)
    expect(seen).toEqual([{ model: 'm', messages, min_p: 0.2, structured_outputs: { choice: ['a', 'b'] } }])
  })
})
