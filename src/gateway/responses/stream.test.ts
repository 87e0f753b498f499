import { ResponseStream } from 'openai/lib/responses/ResponseStream'
import { describe, expect, it } from 'vitest'
import type { JsonObject, ResponseDraft } from './response.ts'
import { ResponsesStream } from './stream.ts'

const draft: ResponseDraft = { id: 'resp_stream', createdAt: 1_800_000_000, model: 'm', echo: {} }

type ToolCall = { id: string; name: string; pieces: string[] }

/** A provider's chat stream as vLLM writes it: role chunk, deltas, finish chunk, usage chunk, [DONE]. */
function chatStream(
  opts: {
    content?: string[]
    reasoning?: string[]
    calls?: ToolCall[]
    finish?: string
    usage?: boolean
    done?: boolean
  } = {},
): string {
  const chunk = (choices: unknown[], extra: JsonObject = {}) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'provider/model', choices, ...extra })}\n\n`
  const delta = (d: JsonObject) => chunk([{ index: 0, delta: d, logprobs: null, finish_reason: null }])
  let out = delta({ role: 'assistant', content: '' })
  for (const piece of opts.reasoning ?? []) out += delta({ reasoning: piece })
  for (const piece of opts.content ?? []) out += delta({ content: piece })
  for (const [index, call] of (opts.calls ?? []).entries()) {
    out += delta({
      tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }],
    })
    for (const piece of call.pieces) out += delta({ tool_calls: [{ index, function: { arguments: piece } }] })
  }
  out += chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: opts.finish ?? 'stop' }])
  if (opts.usage !== false) {
    out += chunk([], { usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 } })
  }
  if (opts.done !== false) out += 'data: [DONE]\n\n'
  return out
}

type Event = JsonObject & { type: string; sequence_number: number }

/** Translates `input` delivered in the given pieces; the events sent and the final response saved. */
function translate(input: Buffer, cuts: number[] = []): { text: string; events: Event[]; final: JsonObject[] } {
  const final: JsonObject[] = []
  const stream = new ResponsesStream(draft, (r) => final.push(r))
  const out: Buffer[] = []
  let from = 0
  for (const cut of [...cuts, input.length]) {
    out.push(Buffer.from(stream.push(input.subarray(from, cut))))
    from = cut
  }
  const text = Buffer.concat(out).toString('utf8')
  return { text, events: parse(text), final }
}

function parse(text: string): Event[] {
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      const [event, data] = block.split('\n')
      const parsed = JSON.parse(data!.slice('data: '.length)) as Event
      expect(event).toBe(`event: ${parsed.type}`)
      return parsed
    })
}

/** Events with their random ids and clock reading replaced, to compare two runs. */
function normalised(text: string): string {
  const ids = new Map<string, string>()
  return text
    .replace(/\b(msg|fc|rs)_[0-9a-f]{48}\b/g, (id) => {
      if (!ids.has(id)) ids.set(id, `id${ids.size}`)
      return ids.get(id)!
    })
    .replace(/"completed_at":\d+/g, '"completed_at":0')
}

/** The SDK's own accumulator (what `client.responses.stream()` runs) over the events. */
async function sdkFinal(events: Event[]) {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const event of events) controller.enqueue(new TextEncoder().encode(`${JSON.stringify(event)}\n`))
      controller.close()
    },
  })
  const seen: string[] = []
  const stream = ResponseStream.fromReadableStream(body)
  stream.on('event', (e) => seen.push(e.type))
  return { response: await stream.finalResponse(), seen }
}

const TEXT = ['Hé', 'llo', ' café', ' 🦊', ' 東京', '!']

describe('ResponsesStream', () => {
  it('emits the documented sequence for a text answer, numbered from 0, ending with the usage', async () => {
    const { events, final } = translate(Buffer.from(chatStream({ content: TEXT })))
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...TEXT.map(() => 'response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ])
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
    const created = events[0]!.response as JsonObject
    expect(created).toMatchObject({ id: 'resp_stream', status: 'in_progress', output: [], usage: null })
    const added = events[2]!
    const itemId = (added.item as JsonObject).id
    expect(added).toMatchObject({ output_index: 0, item: { type: 'message', status: 'in_progress', content: [] } })
    for (const delta of events.filter((e) => e.type === 'response.output_text.delta')) {
      expect(delta).toMatchObject({ item_id: itemId, output_index: 0, content_index: 0, logprobs: [] })
    }
    expect(events.at(-4)).toMatchObject({ type: 'response.output_text.done', text: TEXT.join('') })
    const completed = events.at(-1)!.response as JsonObject
    expect(completed).toMatchObject({
      status: 'completed',
      model: 'provider/model',
      usage: { input_tokens: 9, output_tokens: 4, total_tokens: 13 },
      output: [{ id: itemId, type: 'message', status: 'completed', content: [{ text: TEXT.join('') }] }],
    })
    expect(final).toEqual([completed])
    const sdk = await sdkFinal(events)
    expect(sdk.response.output_text).toBe(TEXT.join(''))
    expect(sdk.response.usage?.total_tokens).toBe(13)
  })

  it('gives the same events however the provider bytes are cut, mid-event and mid-character', () => {
    const input = Buffer.from(chatStream({ content: TEXT, reasoning: ['Thinking ', 'über', ' it'] }))
    const whole = normalised(translate(input).text)
    // Every single cut, then a few hundred random multi-cuts.
    for (let at = 1; at < input.length; at++) expect(normalised(translate(input, [at]).text)).toBe(whole)
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed % n
    }
    for (let run = 0; run < 300; run++) {
      const cuts = Array.from({ length: 1 + random(12) }, () => random(input.length)).sort((a, b) => a - b)
      expect(normalised(translate(input, cuts).text)).toBe(whole)
    }
    // Byte by byte.
    expect(
      normalised(
        translate(
          input,
          Array.from({ length: input.length - 1 }, (_, i) => i + 1),
        ).text,
      ),
    ).toBe(whole)
  })

  it('streams tool calls as function_call items with their argument deltas', async () => {
    const calls = [
      { id: 'call_a', name: 'weather', pieces: ['{"ci', 'ty": "Par', 'is"}'] },
      { id: 'call_b', name: 'time', pieces: ['{}'] },
    ]
    const { events } = translate(Buffer.from(chatStream({ calls, finish: 'tool_calls' })))
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ])
    expect(events[2]).toMatchObject({
      output_index: 0,
      item: { type: 'function_call', status: 'in_progress', call_id: 'call_a', name: 'weather', arguments: '' },
    })
    expect(events[8]).toMatchObject({ output_index: 0, name: 'weather', arguments: '{"city": "Paris"}' })
    const { response } = await sdkFinal(events)
    expect(response.status).toBe('completed')
    expect(response.output).toMatchObject([
      { type: 'function_call', call_id: 'call_a', name: 'weather', arguments: '{"city": "Paris"}' },
      { type: 'function_call', call_id: 'call_b', name: 'time', arguments: '{}' },
    ])
  })

  it('puts reasoning in its own item before the answer', async () => {
    const { events } = translate(Buffer.from(chatStream({ reasoning: ['Let me ', 'think.'], content: ['Yes.'] })))
    const types = events.map((e) => e.type)
    expect(types.slice(2, 6)).toEqual([
      'response.output_item.added',
      'response.content_part.added',
      'response.reasoning_text.delta',
      'response.reasoning_text.delta',
    ])
    expect(types.indexOf('response.output_item.done')).toBeLessThan(types.indexOf('response.output_text.delta'))
    const { response } = await sdkFinal(events)
    expect(response.output.map((o) => o.type)).toEqual(['reasoning', 'message'])
    expect(response.output_text).toBe('Yes.')
  })

  it('ends with response.incomplete when the provider hit the token limit', async () => {
    const { events, final } = translate(Buffer.from(chatStream({ content: ['cut'], finish: 'length' })))
    expect(events.at(-1)).toMatchObject({
      type: 'response.incomplete',
      response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } },
    })
    expect(events.find((e) => e.type === 'response.output_item.done')).toMatchObject({ item: { status: 'incomplete' } })
    expect(final[0]).toMatchObject({ status: 'incomplete' })
    expect((await sdkFinal(events)).response.status).toBe('incomplete')
  })

  it('ends with response.failed, keeping what came, on a provider error event; nothing after it', async () => {
    const input = `${chatStream({ content: ['partial'], done: false, usage: false }).split('data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"provider/model","choices":[{"index":0,"delta":{},')[0]}data: {"error":{"message":"backend crashed","type":"api_error"}}\n\n${chatStream({ content: ['more'] })}`
    const { events, final } = translate(Buffer.from(input))
    const last = events.at(-1)!
    expect(last.type).toBe('response.failed')
    expect(last.response).toMatchObject({
      status: 'failed',
      error: { code: 'server_error', message: expect.stringContaining('backend crashed') },
      output: [{ type: 'message', status: 'incomplete', content: [{ text: 'partial' }] }],
    })
    expect(final).toHaveLength(1)
    const { response } = await sdkFinal(events)
    expect(response.status).toBe('failed')
  })

  it('fails a stream the gateway saw cut off: before any event, after some, and not after the end', () => {
    const early: JsonObject[] = []
    const before = new ResponsesStream(draft, (r) => early.push(r))
    const beforeEvents = parse(Buffer.from(before.fail('the provider went away')).toString())
    expect(beforeEvents.map((e) => e.type)).toEqual(['response.created', 'response.in_progress', 'response.failed'])
    expect(early[0]).toMatchObject({ status: 'failed', error: { message: 'the provider went away' } })

    const midway = new ResponsesStream(draft, () => {})
    const input = Buffer.from(chatStream({ content: ['Hé'] }))
    // Cut inside the "é": the half character is never sent as a delta.
    const cut = input.indexOf(Buffer.from('é')) + 1
    const sent = parse(Buffer.from(midway.push(input.subarray(0, cut))).toString())
    expect(sent.some((e) => e.type === 'response.output_text.delta')).toBe(false)
    const failed = parse(Buffer.from(midway.fail('connection reset')).toString())
    expect(failed.map((e) => e.type)).toEqual(['response.failed'])
    expect(failed[0]!.sequence_number).toBe(sent.length)

    const done = new ResponsesStream(draft, () => {})
    done.push(input)
    expect(done.fail('late')).toHaveLength(0)
    expect(done.push(input)).toHaveLength(0)
  })

  it('still gives an (empty) message when the provider said nothing', async () => {
    const { events } = translate(Buffer.from(chatStream({})))
    expect(events.at(-1)!.response).toMatchObject({ status: 'completed', output: [{ type: 'message' }] })
    expect((await sdkFinal(events)).response.output_text).toBe('')
  })
})
