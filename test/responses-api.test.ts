import { ChatOpenAI } from '@langchain/openai'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { expectOpenAiError } from '../src/gateway/http/expect-openai-error.ts'
import { startTestStack } from './support/dev-stack.ts'
import { type Json, json } from './support/json.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
let client: OpenAI

beforeAll(async () => {
  stack = await startTestStack()
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-zg-dev', maxRetries: 0 })
})
afterAll(async () => {
  await stack?.dispose()
})

const model = DEV_CHAT_MODEL
const weatherTool: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
}

type Receipt = { endpoint: string; verification: { status: string; level: string | null } }

/** The call's receipt once it is final (verified, or anything but pending). */
async function receiptOf(requestId: string): Promise<Receipt | undefined> {
  let receipt: Receipt | undefined
  for (let i = 0; i < 100 && (!receipt || receipt.verification.status === 'pending'); i++) {
    await new Promise((r) => setTimeout(r, 25))
    const res = await fetch(`${stack.baseURL}/receipts/${requestId}`, {
      headers: { authorization: 'Bearer sk-zg-dev' },
    })
    if (res.ok) receipt = (await res.json()) as Receipt
  }
  return receipt
}

const post = (body: unknown, key = 'sk-zg-dev') =>
  fetch(`${stack.baseURL}/responses`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

/** The events of a raw Responses stream: `event: <type>` and `data: <json>` per block, nothing else. */
function sseEvents(text: string): Array<{ type: string; sequence_number: number } & Record<string, unknown>> {
  return text
    .split('\n\n')
    .filter((block) => block && !block.startsWith(':'))
    .map((block) => {
      const [event, data, ...rest] = block.split('\n')
      expect(rest).toEqual([])
      expect(data!.startsWith('data: ')).toBe(true)
      const parsed = JSON.parse(data!.slice(6))
      expect(event).toBe(`event: ${parsed.type}`)
      return parsed
    })
}

describe('the Responses API through the official openai client', () => {
  it('answers a plain response with the provider and receipt headers, and the receipt verifies', async () => {
    const { data, response, request_id } = await client.responses
      .create({ model, input: 'Tell me about the sea', instructions: 'Answer in prose.', metadata: { run: 'e2e' } })
      .withResponse()
    expect(data.id).toMatch(/^resp_[0-9a-f]{48}$/)
    expect(data.object).toBe('response')
    expect(data.status).toBe('completed')
    expect(Number.isInteger(data.created_at)).toBe(true)
    expect(data.output_text.length).toBeGreaterThan(0)
    expect(data.output).toEqual([
      expect.objectContaining({ type: 'message', id: expect.stringMatching(/^msg_/), role: 'assistant' }),
    ])
    expect(data.usage!.total_tokens).toBe(data.usage!.input_tokens + data.usage!.output_tokens)
    expect(data.usage!.input_tokens).toBeGreaterThan(0)
    expect(data).toMatchObject({ instructions: 'Answer in prose.', metadata: { run: 'e2e' }, store: true, error: null })
    expect(request_id).toBe(response.headers.get('x-request-id'))
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(response.headers.get('x-zg-provider')).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect(response.headers.get('x-zg-verification')).toBe('L1')
    expect(response.headers.get('x-zg-receipt')).toBe(`/v1/receipts/${request_id}`)
    // The receipt covers the exact chat call the provider served and signed.
    expect(await receiptOf(request_id!)).toMatchObject({
      endpoint: 'chat/completions',
      verification: { status: 'verified', level: 'L1' },
    })
  })

  it('serves a model alias, naming the model that answered', async () => {
    const data = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi' })
    expect(data.status).toBe('completed')
    expect(data.model).toBe(DEV_CHAT_MODEL)
  })

  it('stops at max_output_tokens with an incomplete response that says why', async () => {
    const data = await client.responses.create({ model, input: 'Write at length about rivers', max_output_tokens: 16 })
    expect(data.status).toBe('incomplete')
    expect(data.incomplete_details).toEqual({ reason: 'max_output_tokens' })
    expect(data.usage!.output_tokens).toBe(16)
  })

  it('streams the documented event sequence, with no [DONE], usage on response.completed, and a verified receipt', async () => {
    const res = await post({ model, input: 'Stream me something with accents and emoji', stream: true })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    expect(res.headers.get('x-zg-provider')).toMatch(/^0x/)
    const requestId = res.headers.get('x-request-id')!
    const text = await res.text()
    expect(text).not.toContain('[DONE]')
    const events = sseEvents(text)
    const types = events.map((e) => e.type)
    expect(types.slice(0, 4)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ])
    expect(types.slice(-4)).toEqual([
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ])
    const deltas = events.filter((e) => e.type === 'response.output_text.delta')
    expect(deltas.length).toBeGreaterThan(3)
    expect(types.slice(4, -4).every((t) => t === 'response.output_text.delta')).toBe(true)
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
    const completed = events.at(-1)!.response as OpenAI.Responses.Response
    const content = completed.output[0] as OpenAI.Responses.ResponseOutputMessage
    expect((content.content[0] as OpenAI.Responses.ResponseOutputText).text).toBe(deltas.map((d) => d.delta).join(''))
    expect(completed.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: deltas.length })
    // The same request not streamed gets the same text: the translation adds and loses nothing.
    const whole = await client.responses.create({ model, input: 'Stream me something with accents and emoji' })
    expect(whole.output_text).toBe(deltas.map((d) => d.delta).join(''))
    expect(await receiptOf(requestId)).toMatchObject({ verification: { status: 'verified', level: 'L1' } })
  })

  it('streams through the SDK: create({stream: true}) events and the stream() helper’s finalResponse', async () => {
    const stream = await client.responses.create({ model, input: 'hello there', stream: true })
    const seen: string[] = []
    let usage: OpenAI.Responses.ResponseUsage | undefined
    for await (const event of stream) {
      seen.push(event.type)
      if (event.type === 'response.completed') usage = event.response.usage
    }
    expect(seen[0]).toBe('response.created')
    expect(seen.at(-1)).toBe('response.completed')
    expect(usage!.total_tokens).toBe(usage!.input_tokens + usage!.output_tokens)

    let text = ''
    const helper = client.responses.stream({ model, input: 'hello again' }).on('response.output_text.delta', (e) => {
      text += e.delta
    })
    const final = await helper.finalResponse()
    expect(final.status).toBe('completed')
    expect(final.output_text).toBe(text)
    expect(final.output_text.length).toBeGreaterThan(0)
    expect(final.usage!.output_tokens).toBeGreaterThan(0)
  })

  it('calls a function tool, then answers once given its output (chained and stateless)', async () => {
    const first = await client.responses.create({ model, input: 'What is the weather in Paris?', tools: [weatherTool] })
    expect(first.status).toBe('completed')
    const call = first.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' })
    expect(call.id).toMatch(/^fc_/)
    expect(call.call_id).toMatch(/^call_/)
    expect(typeof JSON.parse(call.arguments).city).toBe('string')
    expect(first.tools).toEqual([{ ...weatherTool }])

    const output = { type: 'function_call_output' as const, call_id: call.call_id, output: '{"temperature": 21}' }
    const chained = await client.responses.create({
      model,
      previous_response_id: first.id,
      input: [output],
      tools: [weatherTool],
    })
    expect(chained.output_text.length).toBeGreaterThan(0)
    expect(chained.output.some((o) => o.type === 'function_call')).toBe(false)

    const stateless = await client.responses.create({
      model,
      store: false,
      input: [{ role: 'user', content: 'What is the weather in Paris?' }, call, output],
      tools: [weatherTool],
    })
    // The same conversation, by value or by reference: the same prompt, so the same answer.
    expect(stateless.output_text).toBe(chained.output_text)
    expect(stateless.usage!.input_tokens).toBe(chained.usage!.input_tokens)
  })

  it('streams a function call: argument deltas, and the helper’s final function_call item', async () => {
    const stream = client.responses.stream({
      model,
      input: 'Weather in Lyon, please',
      tools: [weatherTool],
      tool_choice: { type: 'function', name: 'get_weather' },
    })
    const types: string[] = []
    stream.on('event', (e) => types.push(e.type))
    const final = await stream.finalResponse()
    expect(types).toContain('response.function_call_arguments.delta')
    expect(types).toContain('response.function_call_arguments.done')
    const call = final.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall
    expect(call.name).toBe('get_weather')
    expect(typeof JSON.parse(call.arguments).city).toBe('string')
  })

  it('honours text.format json_schema', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, population: { type: 'integer' } },
      required: ['city', 'population'],
      additionalProperties: false,
    }
    const data = await client.responses.create({
      model,
      input: 'Name a city',
      text: { format: { type: 'json_schema', name: 'city', schema, strict: true } },
    })
    const parsed = JSON.parse(data.output_text)
    expect(typeof parsed.city).toBe('string')
    expect(Number.isInteger(parsed.population)).toBe(true)
    expect(data.text?.format).toMatchObject({ type: 'json_schema', name: 'city' })
  })

  it('continues a conversation with previous_response_id: the provider sees the earlier turns', async () => {
    const first = await client.responses.create({ model, input: 'My name is Ada.', instructions: 'Be kind.' })
    const second = await client.responses.create({ model, input: 'What is my name?', previous_response_id: first.id })
    const alone = await client.responses.create({ model, input: 'What is my name?' })
    expect(second.previous_response_id).toBe(first.id)
    // The second prompt holds the first turn, its answer and the new question (the instructions are not carried).
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens + first.usage!.output_tokens)
    expect(second.usage!.input_tokens).toBeGreaterThan(alone.usage!.input_tokens + first.usage!.output_tokens)
    expect(second.output_text).not.toBe(alone.output_text)
    const items = await client.responses.inputItems.list(second.id, { order: 'asc' })
    expect(items.data.map((i) => (i as { role?: string }).role)).toEqual(['user', 'assistant', 'user'])
    const page: Json = await json(
      await fetch(`${stack.baseURL}/responses/${second.id}/input_items?limit=1`, {
        headers: { authorization: 'Bearer sk-zg-dev' },
      }),
    )
    expect(page).toMatchObject({ object: 'list', has_more: true, data: [{ role: 'user', type: 'message' }] })
    expect(page.first_id).toBe(page.last_id)
  })

  it('retrieves and deletes stored responses; store:false keeps nothing', async () => {
    const created = await client.responses.create({ model, input: 'keep this' })
    const retrieved = await client.responses.retrieve(created.id)
    expect(retrieved).toEqual(created)

    const streamed = client.responses.stream({ model, input: 'keep this stream' })
    const final = await streamed.finalResponse()
    expect((await client.responses.retrieve(final.id)).output_text).toBe(final.output_text)

    const deleted = await fetch(`${stack.baseURL}/responses/${created.id}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer sk-zg-dev' },
    })
    expect(await deleted.json()).toEqual({ id: created.id, object: 'response.deleted', deleted: true })
    await expect(client.responses.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    await expect(client.responses.delete(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    await client.responses.delete(final.id)

    const unstored = await client.responses.create({ model, input: 'forget this', store: false })
    expect(unstored).toMatchObject({ store: false })
    await expect(client.responses.retrieve(unstored.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    const res = await post({ model, input: 'and then?', previous_response_id: unstored.id })
    const error = await expectOpenAiError(res, 400, 'previous_response_not_found')
    expect(error.param).toBe('previous_response_id')
  })

  it('shows a response only to the API key that created it', async () => {
    const mine = await client.responses.create({ model, input: 'private' })
    const other = new OpenAI({
      baseURL: stack.baseURL,
      apiKey: (await stack.gateway.keys.create('other')).key,
      maxRetries: 0,
    })
    await expect(other.responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    await expect(other.responses.delete(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError)
    await expect(other.responses.create({ model, input: 'and?', previous_response_id: mine.id })).rejects.toMatchObject(
      { status: 400, param: 'previous_response_id' },
    )
    expect((await client.responses.retrieve(mine.id)).id).toBe(mine.id)
    const res = await fetch(`${stack.baseURL}/responses/resp_unknown`, {
      headers: { authorization: 'Bearer sk-zg-dev' },
    })
    await expectOpenAiError(res, 404, 'response_not_found')
  })

  it('refuses what it cannot serve with a 400 naming the parameter, before any provider is paid', async () => {
    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      [{ background: true }, 'background'],
      [{ temperature: 3 }, 'temperature'],
      [{ max_output_tokens: 8 }, 'max_output_tokens'],
      [{ include: ['file_search_call.results'] }, 'include[0]'],
      [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file_1' }] }] }, 'input[0].content[0].type'],
    ]
    for (const [extra, param] of refusals) {
      const res = await post({ model, input: 'x', ...extra })
      const error = await expectOpenAiError(res, 400)
      expect(error.param).toBe(param)
      expect(error.type).toBe('invalid_request_error')
    }
    await expect(client.responses.create({ model, input: 'x', tools: [{ type: 'web_search' }] })).rejects.toMatchObject(
      { status: 400, param: 'tools[0].type' },
    )
    // The provider's refusal of the chat call names the client's parameter, not the chat one.
    const overflow = await post({ model, input: 'x', max_output_tokens: 10_000_000 })
    expect((await expectOpenAiError(overflow, 400, 'context_length_exceeded')).param).toBe('max_output_tokens')
    const unknownModel = await post({ model: 'no/such-model', input: 'x' })
    await expectOpenAiError(unknownModel, 404, 'model_not_found')
  })
})

describe('@langchain/openai with useResponsesApi against the dev stack', () => {
  const chat = () =>
    new ChatOpenAI({
      model,
      apiKey: 'sk-zg-dev',
      useResponsesApi: true,
      configuration: { baseURL: stack.baseURL },
      maxRetries: 0,
    })

  it('invokes and streams', async () => {
    const reply = await chat().invoke('Hello LangChain')
    expect(reply.text.length).toBeGreaterThan(0)
    // Served as a Responses call, not a chat completion.
    expect(reply.response_metadata).toMatchObject({ status: 'completed', id: expect.stringMatching(/^resp_/) })
    expect(reply.usage_metadata).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) })
    let text = ''
    for await (const chunk of await chat().stream('Hello again')) text += chunk.text
    expect(text.length).toBeGreaterThan(0)
  })

  it('runs a tool loop with bound tools', async () => {
    const tools = [
      { type: 'function' as const, function: { name: 'get_weather', parameters: weatherTool.parameters! } },
    ]
    const model = chat().bindTools(tools)
    const asked = await model.invoke('What is the weather in Paris?')
    expect(asked.tool_calls?.[0]).toMatchObject({ name: 'get_weather', args: { city: expect.any(String) } })
    const answered = await model.invoke([
      { role: 'user', content: 'What is the weather in Paris?' },
      asked,
      { role: 'tool', content: '21 degrees', tool_call_id: asked.tool_calls![0]!.id! },
    ])
    expect(answered.text.length).toBeGreaterThan(0)
  })
})
