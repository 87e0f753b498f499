import { describe, expect, it } from 'vitest'
import { GatewayError } from '../http/openai-error.ts'
import { chatMessages, readResponsesRequest } from './request.ts'

const base = { model: 'm', input: 'hi' }

/** The 400 a request is refused with. */
function rejection(body: Record<string, unknown>): { status: number; param: string | null; code: string | null } {
  try {
    readResponsesRequest(body)
  } catch (err) {
    if (err instanceof GatewayError) return { status: err.status, param: err.param, code: err.code }
    throw err
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`)
}

const chatOf = (body: Record<string, unknown>) => {
  const request = readResponsesRequest(body)
  return request.chatBody(request.input)
}

describe('readResponsesRequest: the chat call', () => {
  it('turns a string input and instructions into a system and a user message', () => {
    const chat = chatOf({ ...base, input: 'Tell me a story', instructions: 'Be brief.' })
    expect(chat).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Tell me a story' },
      ],
    })
  })

  it('maps sampling, limits, output format, user and reasoning effort onto their chat names', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }
    const chat = chatOf({
      ...base,
      temperature: 0.5,
      top_p: 0.9,
      max_output_tokens: 64,
      text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } },
      safety_identifier: 'user-1',
      reasoning: { effort: 'low' },
      stream: true,
      metadata: { a: 'b' },
      store: false,
    })
    expect(chat).toMatchObject({
      temperature: 0.5,
      top_p: 0.9,
      max_tokens: 64,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
      user: 'user-1',
      reasoning_effort: 'low',
      stream: true,
      // Always: the usage chunk is the usage of response.completed.
      stream_options: { include_usage: true },
    })
    // Responses-only fields stay with the gateway.
    expect(chat).not.toHaveProperty('metadata')
    expect(chat).not.toHaveProperty('store')
    expect(chatOf({ ...base, text: { format: { type: 'json_object' } } }).response_format).toEqual({
      type: 'json_object',
    })
    expect(chatOf({ ...base, text: { format: { type: 'text' } } })).not.toHaveProperty('response_format')
  })

  it('passes provider extras (seed, top_k) on, as the chat route does', () => {
    expect(chatOf({ ...base, seed: 7, top_k: 20 })).toMatchObject({ seed: 7, top_k: 20 })
  })

  it('nests flat function tools and tool choices as chat has them', () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } } }
    const tools = [
      { type: 'function', name: 'weather', description: 'Weather', parameters, strict: false },
      { type: 'function', name: 'time', parameters: null },
    ]
    const chat = chatOf({ ...base, tools, tool_choice: { type: 'function', name: 'time' }, parallel_tool_calls: false })
    expect(chat.tools).toEqual([
      { type: 'function', function: { name: 'weather', description: 'Weather', parameters, strict: false } },
      { type: 'function', function: { name: 'time' } },
    ])
    expect(chat.tool_choice).toEqual({ type: 'function', function: { name: 'time' } })
    expect(chat.parallel_tool_calls).toBe(false)
    const allowed = chatOf({
      ...base,
      tools,
      tool_choice: { type: 'allowed_tools', mode: 'required', tools: [{ type: 'function', name: 'weather' }] },
    })
    expect(allowed.tools).toHaveLength(1)
    expect(allowed.tool_choice).toBe('required')
    // tool_choice without tools means nothing to a chat server (which would refuse it).
    expect(chatOf({ ...base, tool_choice: 'auto' })).not.toHaveProperty('tool_choice')
  })

  it('echoes what the response repeats, with OpenAI defaults', () => {
    const { echo, store, stream } = readResponsesRequest({ ...base, tools: [{ type: 'function', name: 'f' }] })
    expect(store).toBe(true)
    expect(stream).toBe(false)
    expect(echo).toMatchObject({
      instructions: null,
      tool_choice: 'auto',
      parallel_tool_calls: true,
      text: { format: { type: 'text' }, verbosity: 'medium' },
      tools: [{ type: 'function', name: 'f', description: null, parameters: null, strict: null }],
      metadata: {},
      store: true,
    })
  })
})

describe('readResponsesRequest: input items', () => {
  it('normalises items with ids and content parts, as OpenAI lists them', () => {
    const { input } = readResponsesRequest({
      ...base,
      input: [
        { role: 'user', content: 'a' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'b', annotations: [] }] },
      ],
    })
    expect(input[0]).toEqual({
      type: 'message',
      id: expect.stringMatching(/^msg_[0-9a-f]{48}$/),
      role: 'user',
      status: 'completed',
      content: [{ type: 'input_text', text: 'a' }],
    })
    expect(input[1]!.content).toEqual([{ type: 'output_text', text: 'b', annotations: [], logprobs: [] }])
  })

  it('makes a tool loop of chat messages: calls join their assistant turn, outputs become tool messages', () => {
    const chat = chatOf({
      ...base,
      input: [
        { role: 'developer', content: [{ type: 'input_text', text: 'rules' }] },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'one' },
            { type: 'input_text', text: 'two' },
          ],
        },
        { type: 'reasoning', id: 'rs_1', summary: [] },
        { role: 'assistant', content: 'Let me look.' },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"x":1}' },
        { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'one' },
        { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'two' }] },
        { type: 'function_call', call_id: 'c3', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c3', output: 'three' },
      ],
    })
    expect(chat.messages).toEqual([
      { role: 'system', content: 'rules' },
      { role: 'user', content: 'one\ntwo' },
      {
        role: 'assistant',
        content: 'Let me look.',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
          { id: 'c2', type: 'function', function: { name: 'g', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'one' },
      { role: 'tool', tool_call_id: 'c2', content: 'two' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c3', type: 'function', function: { name: 'f', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 'c3', content: 'three' },
    ])
  })

  it('sends image URLs as chat image parts', () => {
    const chat = chatOf({
      ...base,
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'what is this?' },
            { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'low' },
          ],
        },
      ],
    })
    expect(chat.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'what is this?' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
        ],
      },
    ])
  })

  it('continues a conversation: earlier items come first, the instructions are only this request’s', () => {
    const earlier = readResponsesRequest({ ...base, input: 'first' }).input
    const request = readResponsesRequest({ ...base, input: 'second', instructions: 'now' })
    expect(chatMessages('now', [...earlier, ...request.input])).toEqual([
      { role: 'system', content: 'now' },
      { role: 'user', content: 'first' },
      { role: 'user', content: 'second' },
    ])
  })
})

describe('readResponsesRequest: refusals', () => {
  it.each([
    [{ model: 'm' }, 'input'],
    [{ input: 'x' }, 'model'],
    [{ ...base, input: [] }, 'input'],
    [{ ...base, temperature: 2.5 }, 'temperature'],
    [{ ...base, temperature: -0.1 }, 'temperature'],
    [{ ...base, top_p: 1.5 }, 'top_p'],
    [{ ...base, max_output_tokens: 15 }, 'max_output_tokens'],
    [{ ...base, max_output_tokens: 16.5 }, 'max_output_tokens'],
    [{ ...base, stream: 'yes' }, 'stream'],
    [{ ...base, metadata: { k: 1 } }, 'metadata.k'],
    [{ ...base, input: [{ role: 'robot', content: 'x' }] }, 'input[0].role'],
    [{ ...base, input: [{ role: 'user' }] }, 'input[0].content'],
    [{ ...base, input: ['x'] }, 'input[0]'],
    [{ ...base, input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 'input[0].content[0].text'],
    [{ ...base, input: [{ role: 'user', content: [{ type: 'bogus' }] }] }, 'input[0].content[0].type'],
    [{ ...base, input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 'input[0].call_id'],
    [{ ...base, tools: [{ type: 'function' }] }, 'tools[0].name'],
    [{ ...base, tools: [{ type: 'function', name: 'bad name' }] }, 'tools[0].name'],
    [
      { ...base, tools: [{ type: 'function', name: 'f' }], tool_choice: { type: 'function', name: 'g' } },
      'tool_choice.name',
    ],
    [{ ...base, tool_choice: 'required' }, 'tool_choice'],
    [{ ...base, text: { format: { type: 'json_schema', schema: {} } } }, 'text.format.name'],
    [{ ...base, text: { format: { type: 'json_schema', name: 'x' } } }, 'text.format.schema'],
    [{ ...base, text: { format: { type: 'xml' } } }, 'text.format.type'],
  ])('refuses %j naming %s', (body, param) => {
    expect(rejection(body)).toMatchObject({ status: 400, param })
  })

  it.each([
    [{ ...base, tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    [{ ...base, tools: [{ type: 'file_search', vector_store_ids: ['v'] }] }, 'tools[0].type'],
    [{ ...base, tool_choice: { type: 'web_search_preview' } }, 'tool_choice'],
    [{ ...base, background: true }, 'background'],
    [{ ...base, conversation: 'conv_1' }, 'conversation'],
    [{ ...base, prompt: { id: 'pmpt_1' } }, 'prompt'],
    [{ ...base, max_tool_calls: 2 }, 'max_tool_calls'],
    [{ ...base, truncation: 'auto' }, 'truncation'],
    [{ ...base, top_logprobs: 2 }, 'top_logprobs'],
    [{ ...base, include: ['file_search_call.results'] }, 'include[0]'],
    [{ ...base, reasoning: { summary: 'auto' } }, 'reasoning.summary'],
    [{ ...base, reasoning: { effort: 'xhigh' } }, 'reasoning.effort'],
    [{ ...base, text: { verbosity: 'low' } }, 'text.verbosity'],
    [{ ...base, input: [{ type: 'web_search_call', id: 'ws_1' }] }, 'input[0].type'],
    [{ ...base, input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type'],
    [
      { ...base, input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] },
      'input[0].content[0].type',
    ],
    [
      { ...base, input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file_1' }] }] },
      'input[0].content[0].file_id',
    ],
    [{ ...base, messages: [] }, 'messages'],
    [{ ...base, max_tokens: 10 }, 'max_tokens'],
  ])('refuses what a chat completion cannot do: %j names %s', (body, param) => {
    const refused = rejection(body)
    expect(refused).toMatchObject({ status: 400, param })
    expect(refused.code).toMatch(/^(unsupported_parameter|unsupported_value|unknown_parameter)$/)
  })

  it('accepts what is harmless or vacuously honoured', () => {
    for (const extra of [
      { background: false, conversation: null, truncation: 'disabled', top_logprobs: 0 },
      { include: ['reasoning.encrypted_content'], text: { verbosity: 'medium' } },
      { service_tier: 'auto', prompt_cache_key: 'k', stream_options: { include_obfuscation: false } },
      { reasoning: { effort: 'high', summary: null } },
    ]) {
      expect(() => readResponsesRequest({ ...base, ...extra })).not.toThrow()
    }
  })
})
