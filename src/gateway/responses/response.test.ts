import { describe, expect, it } from 'vitest'
import { type ResponseDraft, responseFromChatCompletion } from './response.ts'

const draft: ResponseDraft = {
  id: 'resp_test',
  createdAt: 1_800_000_000,
  model: 'alias-model',
  echo: { instructions: 'Be brief.', temperature: 0.2, metadata: { a: 'b' }, store: false },
}

const completion = (message: Record<string, unknown>, finish = 'stop', extra: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'provider/real-model',
      choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finish }],
      usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
      ...extra,
    }),
  )

/** The keys the spec's `Response` schema requires, all present on every response. */
const REQUIRED = [
  'id',
  'object',
  'created_at',
  'error',
  'incomplete_details',
  'instructions',
  'model',
  'tools',
  'output',
  'parallel_tool_calls',
  'metadata',
  'tool_choice',
  'temperature',
  'top_p',
]

describe('responseFromChatCompletion', () => {
  it('makes a completed response with one assistant message, the echoes and the usage', () => {
    const response = responseFromChatCompletion(draft, completion({ content: 'Hello café 🦊' }))
    for (const key of REQUIRED) expect(response).toHaveProperty(key)
    expect(response).toMatchObject({
      id: 'resp_test',
      object: 'response',
      created_at: 1_800_000_000,
      status: 'completed',
      completed_at: expect.any(Number),
      error: null,
      incomplete_details: null,
      instructions: 'Be brief.',
      model: 'provider/real-model',
      temperature: 0.2,
      top_p: null,
      store: false,
      metadata: { a: 'b' },
      usage: {
        input_tokens: 12,
        input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
        output_tokens: 5,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 17,
      },
    })
    expect(response.output).toEqual([
      {
        id: expect.stringMatching(/^msg_[0-9a-f]{48}$/),
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: 'Hello café 🦊', annotations: [], logprobs: [] }],
      },
    ])
  })

  it('is incomplete, with the reason, when the provider stopped at the token limit', () => {
    const response = responseFromChatCompletion(draft, completion({ content: 'cut' }, 'length'))
    expect(response).toMatchObject({
      status: 'incomplete',
      completed_at: null,
      incomplete_details: { reason: 'max_output_tokens' },
      output: [{ type: 'message', status: 'incomplete' }],
    })
  })

  it('gives each tool call a function_call item with the call id, name and argument string', () => {
    const response = responseFromChatCompletion(
      draft,
      completion(
        {
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'time', arguments: '{}' } },
          ],
        },
        'tool_calls',
      ),
    )
    expect(response.status).toBe('completed')
    expect(response.output).toEqual([
      {
        id: expect.stringMatching(/^fc_/),
        type: 'function_call',
        status: 'completed',
        arguments: '{"city":"Paris"}',
        call_id: 'call_1',
        name: 'weather',
      },
      expect.objectContaining({ type: 'function_call', call_id: 'call_2', name: 'time' }),
    ])
  })

  it("puts a reasoning model's thinking in a reasoning item before the message, and reads detailed usage", () => {
    const response = responseFromChatCompletion(
      draft,
      completion({ content: 'Four.', reasoning: '2 and 2 make 4.' }, 'stop', {
        usage: {
          prompt_tokens: 10,
          completion_tokens: 20,
          total_tokens: 30,
          prompt_tokens_details: { cached_tokens: 8 },
          completion_tokens_details: { reasoning_tokens: 15 },
        },
      }),
    )
    expect(response.output).toMatchObject([
      {
        type: 'reasoning',
        id: expect.stringMatching(/^rs_/),
        content: [{ type: 'reasoning_text', text: '2 and 2 make 4.' }],
      },
      { type: 'message', content: [{ text: 'Four.' }] },
    ])
    expect(response.usage).toMatchObject({
      input_tokens_details: { cached_tokens: 8 },
      output_tokens_details: { reasoning_tokens: 15 },
    })
  })

  it('answers something that is not a chat completion with a failed response, in the Responses shape', () => {
    for (const body of ['not json', '{"object":"list","data":[]}']) {
      const response = responseFromChatCompletion(draft, Buffer.from(body))
      for (const key of REQUIRED) expect(response).toHaveProperty(key)
      expect(response).toMatchObject({ status: 'failed', error: { code: 'server_error' }, output: [] })
    }
  })
})
