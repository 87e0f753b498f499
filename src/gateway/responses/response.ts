import { randomBytes } from 'node:crypto'

/**
 * The Responses API's `response` object, built from what a chat completion gives. The fields a Responses client
 * set (or their defaults) are echoed as OpenAI echoes them; the rest comes from the provider's answer.
 */

export type JsonObject = Record<string, unknown>

/** An id as OpenAI shapes them: a prefix (`resp`, `msg`, `fc`, `rs`) and 48 hex digits. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('hex')}`
}

/** What a response echoes of its request, fixed before the provider is called. */
export type ResponseDraft = {
  id: string
  createdAt: number
  /** The model the client asked for; the response names the provider's model once it is known. */
  model: string
  /** The request's fields as the response echoes them (instructions, tools, text, metadata, ...). */
  echo: JsonObject
}

export type ResponseStatus = 'completed' | 'incomplete' | 'failed' | 'in_progress'

export type ResponseState = {
  status: ResponseStatus
  output: JsonObject[]
  model?: string
  usage?: JsonObject | null
  incompleteReason?: 'max_output_tokens' | 'content_filter'
  error?: { code: string; message: string }
}

/** The response object in OpenAI's key order. `output_text` is left to the SDKs, which compute it themselves. */
export function responseObject(draft: ResponseDraft, state: ResponseState): JsonObject {
  const { echo } = draft
  return {
    id: draft.id,
    object: 'response',
    created_at: draft.createdAt,
    status: state.status,
    background: false,
    completed_at: state.status === 'completed' ? Math.floor(Date.now() / 1000) : null,
    error: state.error ?? null,
    incomplete_details: state.incompleteReason ? { reason: state.incompleteReason } : null,
    instructions: echo.instructions ?? null,
    max_output_tokens: echo.max_output_tokens ?? null,
    max_tool_calls: null,
    model: state.model ?? draft.model,
    output: state.output,
    parallel_tool_calls: echo.parallel_tool_calls ?? true,
    previous_response_id: echo.previous_response_id ?? null,
    prompt_cache_key: echo.prompt_cache_key ?? null,
    reasoning: echo.reasoning ?? { effort: null, summary: null },
    safety_identifier: echo.safety_identifier ?? null,
    service_tier: 'default',
    store: echo.store ?? true,
    temperature: echo.temperature ?? null,
    text: echo.text ?? { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: echo.tool_choice ?? 'auto',
    tools: echo.tools ?? [],
    top_logprobs: 0,
    top_p: echo.top_p ?? null,
    truncation: 'disabled',
    usage: state.usage ?? null,
    user: echo.user ?? null,
    metadata: echo.metadata ?? {},
  }
}

const int = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0)

/** A chat completion's usage as the Responses API words it. */
export function responseUsage(usage: unknown): JsonObject | null {
  if (!usage || typeof usage !== 'object') return null
  const u = usage as JsonObject
  const input = int(u.prompt_tokens)
  const output = int(u.completion_tokens)
  const promptDetails = (u.prompt_tokens_details ?? {}) as JsonObject
  const completionDetails = (u.completion_tokens_details ?? {}) as JsonObject
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: int(promptDetails.cached_tokens), cache_write_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: int(completionDetails.reasoning_tokens) },
    total_tokens: typeof u.total_tokens === 'number' ? u.total_tokens : input + output,
    // What the call cost in 0G, as the gateway wrote it into the chat usage (x-zg-fee has it exact, in neuron).
    ...(typeof u.cost === 'number' && { cost: u.cost }),
  }
}

/** How a chat `finish_reason` ends a response: `length` and `content_filter` leave it incomplete. */
export function finishOf(finishReason: unknown): Pick<ResponseState, 'status' | 'incompleteReason'> {
  if (finishReason === 'length') return { status: 'incomplete', incompleteReason: 'max_output_tokens' }
  if (finishReason === 'content_filter') return { status: 'incomplete', incompleteReason: 'content_filter' }
  return { status: 'completed' }
}

export function outputText(text: string): JsonObject {
  return { type: 'output_text', text, annotations: [], logprobs: [] }
}

export function messageItem(id: string, status: string, text: string | null): JsonObject {
  return {
    id,
    type: 'message',
    status,
    role: 'assistant',
    content: text === null ? [] : [outputText(text)],
  }
}

export function functionCallItem(
  id: string,
  status: string,
  call: { callId: string; name: string; arguments: string },
): JsonObject {
  return { id, type: 'function_call', status, arguments: call.arguments, call_id: call.callId, name: call.name }
}

/** A reasoning model's thinking (vLLM's `reasoning`, earlier `reasoning_content`), as a reasoning item. */
export function reasoningItem(id: string, status: string, text: string | null): JsonObject {
  return {
    id,
    type: 'reasoning',
    status,
    summary: [],
    content: text === null ? [] : [{ type: 'reasoning_text', text }],
  }
}

/** The reasoning text a chat message or delta carries, under either of vLLM's names. */
export function reasoningOf(message: JsonObject): string | undefined {
  const text = message.reasoning ?? message.reasoning_content
  return typeof text === 'string' && text !== '' ? text : undefined
}

type ChatToolCall = { id?: unknown; function?: { name?: unknown; arguments?: unknown } }

/**
 * The response for a provider's whole chat completion. Anything but a chat completion (a provider answering 200
 * with something else) makes a failed response, as OpenAI reports a response that went wrong: the client still
 * gets the Responses shape.
 */
export function responseFromChatCompletion(draft: ResponseDraft, bytes: Uint8Array): JsonObject {
  let completion: JsonObject
  try {
    completion = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    return failedResponse(draft, 'the provider answered with something that is not JSON')
  }
  const choice = Array.isArray(completion?.choices) ? (completion.choices[0] as JsonObject | undefined) : undefined
  const message = choice?.message as JsonObject | undefined
  if (!message || typeof message !== 'object') {
    return failedResponse(draft, 'the provider answered with something that is not a chat completion')
  }
  const finish = finishOf(choice?.finish_reason)
  const itemStatus = finish.status === 'completed' ? 'completed' : 'incomplete'
  const output: JsonObject[] = []
  const reasoning = reasoningOf(message)
  if (reasoning !== undefined) output.push(reasoningItem(newId('rs'), itemStatus, reasoning))
  const calls = Array.isArray(message.tool_calls) ? (message.tool_calls as ChatToolCall[]) : []
  const content = typeof message.content === 'string' ? message.content : null
  if ((content !== null && content !== '') || calls.length === 0) {
    output.push(messageItem(newId('msg'), itemStatus, content ?? ''))
  }
  for (const call of calls) {
    output.push(
      functionCallItem(newId('fc'), 'completed', {
        callId: typeof call.id === 'string' ? call.id : newId('call'),
        name: String(call.function?.name ?? ''),
        arguments: typeof call.function?.arguments === 'string' ? call.function.arguments : '{}',
      }),
    )
  }
  return responseObject(draft, {
    ...finish,
    output,
    model: typeof completion.model === 'string' ? completion.model : undefined,
    usage: responseUsage(completion.usage),
  })
}

export function failedResponse(
  draft: ResponseDraft,
  message: string,
  state: Pick<ResponseState, 'model' | 'usage'> & { output?: JsonObject[] } = {},
): JsonObject {
  return responseObject(draft, { output: [], ...state, status: 'failed', error: { code: 'server_error', message } })
}
