import { z } from 'zod'
import { badRequest, type GatewayError } from '../http/openai-error.ts'
import { integer, numberIn, parse } from '../http/validate.ts'
import { type JsonObject, newId, outputText } from './response.ts'

/**
 * A Responses API request (`POST /v1/responses`), checked as OpenAI checks it and translated into the chat
 * completion that 0G providers serve. What a chat completion cannot express is refused with a 400 naming the
 * parameter, never silently dropped.
 */

/** An input item as stored and listed: OpenAI's item shape, with an id. */
export type InputItem = JsonObject & { type: string; id: string }

export type ResponsesRequest = {
  model: string
  stream: boolean
  store: boolean
  previousResponseId: string | undefined
  /** This request's input items (earlier turns come from the store). */
  input: InputItem[]
  /** The request's fields as the response echoes them. */
  echo: JsonObject
  /** The chat completion request for a conversation: earlier turns' items, then this request's. */
  chatBody(items: readonly JsonObject[]): JsonObject
}

const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const
const SUMMARIES = ['auto', 'concise', 'detailed'] as const
/** The efforts a chat request's `reasoning_effort` takes (vLLM refuses the others). */
const CHAT_EFFORTS: ReadonlySet<string> = new Set(['low', 'medium', 'high'])
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/

const responsesSchema = z.looseObject({
  model: z.string().min(1),
  input: z
    .union([z.string(), z.array(z.unknown()).min(1)], { error: 'expected a string or an array of input items' })
    .optional(),
  instructions: z.string().nullish(),
  previous_response_id: z.string().min(1).nullish(),
  stream: z.boolean().nullish(),
  store: z.boolean().nullish(),
  background: z.boolean().nullish(),
  temperature: numberIn(0, 2),
  top_p: numberIn(0, 1),
  max_output_tokens: integer.min(16).nullish(),
  max_tool_calls: integer.min(1).nullish(),
  top_logprobs: integer.min(0).max(20).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, { error: 'expected at most 16 keys' })
    .nullish(),
  user: z.string().nullish(),
  safety_identifier: z.string().max(64).nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_retention: z.enum(['in_memory', '24h']).nullish(),
  service_tier: z.enum(['auto', 'default', 'flex', 'scale', 'priority']).nullish(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  include: z.array(z.string()).nullish(),
  stream_options: z.looseObject({ include_obfuscation: z.boolean().nullish() }).nullish(),
  tools: z.array(z.looseObject({ type: z.string() })).nullish(),
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })], {
      error: 'expected "none", "auto", "required" or a tool choice object',
    })
    .nullish(),
  text: z
    .looseObject({
      format: z
        .looseObject({
          type: z.enum(['text', 'json_object', 'json_schema']),
          name: z.string().regex(TOOL_NAME).optional(),
          schema: z.record(z.string(), z.unknown()).optional(),
          description: z.string().nullish(),
          strict: z.boolean().nullish(),
        })
        .nullish(),
      verbosity: z.enum(['low', 'medium', 'high']).nullish(),
    })
    .nullish(),
  reasoning: z
    .looseObject({
      effort: z.enum(REASONING_EFFORTS).nullish(),
      summary: z.enum(SUMMARIES).nullish(),
      generate_summary: z.enum(SUMMARIES).nullish(),
    })
    .nullish(),
})

type Body = z.output<typeof responsesSchema>

/** Every CreateResponse field: any other field is a provider extra (seed, top_k, ...), passed on to the chat call. */
const RESPONSES_FIELDS = new Set([
  ...Object.keys(responsesSchema.shape),
  'conversation',
  'prompt',
  'context_management',
  'moderation',
  'prompt_cache_options',
])

/** Chat fields the translation owns: sent to /v1/responses they are a mistake, as OpenAI says. */
const CHAT_ONLY_FIELDS = new Set([
  'messages',
  'n',
  'response_format',
  'max_tokens',
  'max_completion_tokens',
  'logprobs',
  'functions',
  'function_call',
  'reasoning_effort',
])

/** What a chat completion has no way to do, refused by name. */
const UNSUPPORTED_FIELDS: ReadonlyArray<[field: string, why: string]> = [
  ['conversation', 'Conversations are not available: chain responses with previous_response_id instead.'],
  ['prompt', 'Stored prompt templates are not available: send the instructions and input themselves.'],
  ['context_management', 'Context management (compaction) is not available.'],
  ['moderation', 'Moderation is not available.'],
  ['max_tool_calls', 'max_tool_calls is not available: a chat completion cannot cap the calls a model makes.'],
]

/** `include` values that hold for every response the gateway makes: it never produces encrypted reasoning. */
const HONOURED_INCLUDES = new Set(['reasoning.encrypted_content'])

const WHY = '0G providers serve chat completions'

function unsupported(message: string, param: string, code = 'unsupported_parameter'): GatewayError {
  return badRequest(message, param, code)
}

const isRecord = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'string') return 'a string'
  return `a ${typeof value}`
}

function invalidType(param: string, expected: string, got: unknown): GatewayError {
  return badRequest(`Invalid type for '${param}': expected ${expected}, but got ${describe(got)} instead.`, param)
}

function requiredString(item: JsonObject, field: string, param: string): string {
  const value = item[field]
  if (value === undefined || value === null) missingParam(`${param}.${field}`)
  if (typeof value !== 'string') throw invalidType(`${param}.${field}`, 'a string', value)
  return value
}

function missingParam(param: string): never {
  throw badRequest(`Missing required parameter: '${param}'.`, param)
}

const optionalString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined)

/** Reads a request body; throws the 400 OpenAI would answer (or one naming what the gateway cannot do). */
export function readResponsesRequest(json: JsonObject): ResponsesRequest {
  const body = parse(responsesSchema, json)
  checkSupported(json, body)
  const extras: JsonObject = {}
  for (const [key, value] of Object.entries(json)) {
    if (RESPONSES_FIELDS.has(key)) continue
    if (CHAT_ONLY_FIELDS.has(key)) {
      throw badRequest(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter')
    }
    extras[key] = value
  }
  if (body.input === undefined) missingParam('input')
  const input = readInput(body.input)
  const tools = readTools(body.tools ?? [])
  const choice = readToolChoice(body.tool_choice, tools)
  const format = body.text?.format
  if (format?.type === 'json_schema') {
    if (format.name === undefined) missingParam('text.format.name')
    if (format.schema === undefined) missingParam('text.format.schema')
  }
  const stream = body.stream ?? false
  const echo: JsonObject = {
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    safety_identifier: body.safety_identifier ?? null,
    store: body.store ?? true,
    temperature: body.temperature ?? null,
    text: { format: format ?? { type: 'text' }, verbosity: body.text?.verbosity ?? 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: tools.map((t) => t.echo),
    top_p: body.top_p ?? null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  }
  const chatTools = choice.only ? tools.filter((t) => choice.only!.has(t.name)) : tools
  const fixed: JsonObject = {
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    // max_tokens, not max_completion_tokens: every OpenAI-compatible server (vLLM, SGLang, llama.cpp) reads it.
    ...(body.max_output_tokens != null ? { max_tokens: body.max_output_tokens } : {}),
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { top_p: body.top_p } : {}),
    ...(chatTools.length ? { tools: chatTools.map((t) => t.chat) } : {}),
    ...(chatTools.length && choice.chat !== undefined ? { tool_choice: choice.chat } : {}),
    ...(chatTools.length && body.parallel_tool_calls != null ? { parallel_tool_calls: body.parallel_tool_calls } : {}),
    ...chatResponseFormat(format),
    ...(body.user || body.safety_identifier ? { user: body.user || body.safety_identifier } : {}),
    ...(body.reasoning?.effort != null ? { reasoning_effort: body.reasoning.effort } : {}),
  }
  return {
    model: body.model,
    stream,
    store: body.store ?? true,
    previousResponseId: body.previous_response_id ?? undefined,
    input,
    echo,
    chatBody: (items) => ({
      ...extras,
      model: body.model,
      messages: chatMessages(body.instructions ?? undefined, items),
      ...fixed,
    }),
  }
}

function checkSupported(json: JsonObject, body: Body): void {
  for (const [field, why] of UNSUPPORTED_FIELDS) {
    if (json[field] !== undefined && json[field] !== null) throw unsupported(why, field)
  }
  if (body.background) {
    throw unsupported('Background responses are not available: send the request without background.', 'background')
  }
  if (body.truncation === 'auto') {
    throw unsupported(
      "truncation 'auto' is not available: the gateway cannot tell which items a provider's model would fit.",
      'truncation',
      'unsupported_value',
    )
  }
  if (body.top_logprobs) throw unsupported('top_logprobs is not available on this gateway.', 'top_logprobs')
  const effort = body.reasoning?.effort
  if (effort && !CHAT_EFFORTS.has(effort)) {
    throw unsupported(
      `reasoning.effort '${effort}' is not available: chat servers (vLLM) take 'low', 'medium' or 'high'.`,
      'reasoning.effort',
      'unsupported_value',
    )
  }
  if (body.reasoning?.summary || body.reasoning?.generate_summary) {
    throw unsupported(
      'Reasoning summaries are not available: a provider returns its reasoning text, not a summary of it.',
      body.reasoning.summary ? 'reasoning.summary' : 'reasoning.generate_summary',
    )
  }
  const verbosity = body.text?.verbosity
  if (verbosity && verbosity !== 'medium') {
    throw unsupported(`text.verbosity '${verbosity}' is not available: ${WHY}.`, 'text.verbosity', 'unsupported_value')
  }
  for (const [i, value] of (body.include ?? []).entries()) {
    if (!HONOURED_INCLUDES.has(value)) {
      throw unsupported(`include '${value}' is not available on this gateway.`, `include[${i}]`, 'unsupported_value')
    }
  }
}

function userMessage(text: string): InputItem {
  return { type: 'message', id: newId('msg'), role: 'user', status: 'completed', content: [inputText(text)] }
}

const inputText = (text: string): JsonObject => ({ type: 'input_text', text })

function readInput(input: string | unknown[]): InputItem[] {
  if (typeof input === 'string') return [userMessage(input)]
  return input.map((raw, i) => readItem(raw, `input[${i}]`))
}

const ROLES = ['user', 'assistant', 'system', 'developer']

function readItem(raw: unknown, param: string): InputItem {
  if (!isRecord(raw)) throw invalidType(param, 'an object', raw)
  const type = raw.type ?? 'message'
  switch (type) {
    case 'message': {
      const role = raw.role
      if (role === undefined) missingParam(`${param}.role`)
      if (typeof role !== 'string' || !ROLES.includes(role)) {
        throw badRequest(
          `Invalid value for '${param}.role': ${JSON.stringify(role)}. Supported values are: ${ROLES.map((r) => `'${r}'`).join(', ')}.`,
          `${param}.role`,
        )
      }
      return {
        type: 'message',
        id: optionalString(raw.id) ?? newId('msg'),
        role,
        status: 'completed',
        content: readContent(raw.content, role, `${param}.content`),
      }
    }
    case 'function_call':
      return {
        type: 'function_call',
        id: optionalString(raw.id) ?? newId('fc'),
        call_id: requiredString(raw, 'call_id', param),
        name: requiredString(raw, 'name', param),
        arguments: requiredString(raw, 'arguments', param),
        status: 'completed',
      }
    case 'function_call_output':
      return {
        type: 'function_call_output',
        id: optionalString(raw.id) ?? newId('fco'),
        call_id: requiredString(raw, 'call_id', param),
        output: readToolOutput(raw.output, `${param}.output`),
        status: 'completed',
      }
    case 'reasoning':
      // Kept with the conversation, not sent on: chat models are not given their earlier reasoning back.
      return { ...raw, type: 'reasoning', id: optionalString(raw.id) ?? newId('rs') }
    case 'item_reference':
      throw unsupported(
        'Item references are not available: send the item itself, or continue with previous_response_id.',
        `${param}.type`,
        'unsupported_value',
      )
    default:
      throw unsupported(
        `Input items of type '${String(type)}' are not available: ${WHY}, so only messages, function calls and ` +
          'function call outputs can be sent.',
        `${param}.type`,
        'unsupported_value',
      )
  }
}

function readContent(content: unknown, role: string, param: string): JsonObject[] {
  const assistant = role === 'assistant'
  if (content === undefined || content === null) missingParam(param)
  if (typeof content === 'string') return [assistant ? outputText(content) : inputText(content)]
  if (!Array.isArray(content)) throw invalidType(param, 'a string or an array of content parts', content)
  return content.map((part, j) => {
    const at = `${param}[${j}]`
    if (!isRecord(part)) throw invalidType(at, 'an object', part)
    switch (part.type) {
      case 'input_text':
      case 'output_text': {
        const text = requiredString(part, 'text', at)
        return assistant ? outputText(text) : inputText(text)
      }
      case 'refusal':
        return { type: 'refusal', refusal: requiredString(part, 'refusal', at) }
      case 'input_image': {
        if (typeof part.image_url === 'string') {
          return { type: 'input_image', image_url: part.image_url, detail: optionalString(part.detail) ?? 'auto' }
        }
        if (part.file_id != null) {
          throw unsupported(
            'Images by file_id are not available: send the image as image_url (a URL or a data: URL).',
            `${at}.file_id`,
          )
        }
        return missingParam(`${at}.image_url`)
      }
      case 'input_file':
      case 'input_audio':
        throw unsupported(`Content parts of type '${part.type}' are not available: ${WHY}.`, `${at}.type`)
      default:
        throw badRequest(
          `Invalid value for '${at}.type': ${JSON.stringify(part.type)}. Supported values are: 'input_text', ` +
            `'output_text', 'refusal', 'input_image'.`,
          `${at}.type`,
        )
    }
  })
}

function readToolOutput(output: unknown, param: string): string {
  if (output === undefined || output === null) missingParam(param)
  if (typeof output === 'string') return output
  if (!Array.isArray(output)) throw invalidType(param, 'a string or an array of content parts', output)
  return output
    .map((part, j) => {
      if (!isRecord(part) || part.type !== 'input_text') {
        throw unsupported(`Function call outputs can hold text only: ${WHY}.`, `${param}[${j}]`)
      }
      return requiredString(part, 'text', `${param}[${j}]`)
    })
    .join('')
}

type Tool = { name: string; chat: JsonObject; echo: JsonObject }

/** Responses function tools are flat; chat nests the function under `function`. */
function readTools(tools: JsonObject[]): Tool[] {
  return tools.map((tool, i) => {
    const param = `tools[${i}]`
    if (tool.type !== 'function') {
      throw unsupported(
        `Tools of type '${String(tool.type)}' are not available: ${WHY}, so only function tools can be used.`,
        `${param}.type`,
        'unsupported_value',
      )
    }
    const name = requiredString(tool, 'name', param)
    if (!TOOL_NAME.test(name)) {
      throw badRequest(
        `Invalid '${param}.name': a function name is 1 to 64 letters, digits, underscores or dashes.`,
        `${param}.name`,
      )
    }
    const { description, parameters, strict } = tool
    if (description != null && typeof description !== 'string')
      throw invalidType(`${param}.description`, 'a string', description)
    if (parameters != null && !isRecord(parameters)) throw invalidType(`${param}.parameters`, 'an object', parameters)
    if (strict != null && typeof strict !== 'boolean') throw invalidType(`${param}.strict`, 'a boolean', strict)
    const fn: JsonObject = { name }
    if (description != null) fn.description = description
    if (parameters != null) fn.parameters = parameters
    if (strict != null) fn.strict = strict
    return {
      name,
      chat: { type: 'function', function: fn },
      echo: {
        type: 'function',
        name,
        description: description ?? null,
        parameters: parameters ?? null,
        strict: strict ?? null,
      },
    }
  })
}

type ToolChoice = { chat?: unknown; only?: Set<string> }

function readToolChoice(choice: Body['tool_choice'], tools: Tool[]): ToolChoice {
  if (choice === undefined || choice === null) return {}
  const names = new Set(tools.map((t) => t.name))
  const needTools = () => {
    if (!names.size) throw badRequest("'tool_choice' needs function tools in 'tools'.", 'tool_choice')
  }
  if (typeof choice === 'string') {
    if (choice === 'required') needTools()
    return { chat: choice }
  }
  if (choice.type === 'function') {
    needTools()
    const name = requiredString(choice, 'name', 'tool_choice')
    if (!names.has(name))
      throw badRequest(`'tool_choice' names '${name}', which is not in 'tools'.`, 'tool_choice.name')
    return { chat: { type: 'function', function: { name } } }
  }
  if (choice.type === 'allowed_tools') {
    needTools()
    const mode = choice.mode
    if (mode !== 'auto' && mode !== 'required') {
      throw badRequest(
        `Invalid value for 'tool_choice.mode': ${JSON.stringify(mode)}. Supported values are: 'auto', 'required'.`,
        'tool_choice.mode',
      )
    }
    if (!Array.isArray(choice.tools)) throw invalidType('tool_choice.tools', 'an array', choice.tools)
    const only = new Set<string>()
    for (const [i, allowed] of choice.tools.entries()) {
      if (!isRecord(allowed) || allowed.type !== 'function') {
        throw unsupported(`Only function tools can be allowed: ${WHY}.`, `tool_choice.tools[${i}]`, 'unsupported_value')
      }
      only.add(requiredString(allowed, 'name', `tool_choice.tools[${i}]`))
    }
    return { chat: mode, only }
  }
  throw unsupported(
    `tool_choice of type '${choice.type}' is not available: ${WHY}, so only function tools can be chosen.`,
    'tool_choice',
    'unsupported_value',
  )
}

function chatResponseFormat(format: NonNullable<Body['text']>['format']): JsonObject {
  if (!format || format.type === 'text') return {}
  if (format.type === 'json_object') return { response_format: { type: 'json_object' } }
  const schema: JsonObject = { name: format.name, schema: format.schema }
  if (format.description != null) schema.description = format.description
  if (format.strict != null) schema.strict = format.strict
  return { response_format: { type: 'json_schema', json_schema: schema } }
}

const textOf = (parts: JsonObject[]): string =>
  parts.map((p) => (typeof p.text === 'string' ? p.text : typeof p.refusal === 'string' ? p.refusal : '')).join('')

/**
 * A message's content for chat: a string when it is all text (what every chat template takes; text parts are
 * joined with a newline, as vLLM joins them), parts when it holds an image.
 */
function chatContent(parts: JsonObject[]): unknown {
  if (!parts.some((p) => p.type === 'input_image')) return parts.map((p) => p.text ?? p.refusal ?? '').join('\n')
  return parts.map((p) =>
    p.type === 'input_image'
      ? { type: 'image_url', image_url: { url: p.image_url, detail: p.detail ?? 'auto' } }
      : { type: 'text', text: p.text ?? p.refusal ?? '' },
  )
}

/**
 * The chat messages for a conversation. Instructions come first, as a system message (not carried over between
 * chained responses, as OpenAI does); `developer` becomes `system`, which every chat template knows. Function
 * calls join the assistant message before them, as the tool_calls of one turn; their outputs become tool messages.
 */
export function chatMessages(instructions: string | undefined, items: readonly JsonObject[]): JsonObject[] {
  const messages: JsonObject[] = []
  if (instructions) messages.push({ role: 'system', content: instructions })
  let assistant: JsonObject | undefined
  for (const item of items) {
    if (item.type === 'message') {
      const parts = item.content as JsonObject[]
      if (item.role === 'assistant') {
        assistant = { role: 'assistant', content: textOf(parts) }
        messages.push(assistant)
        continue
      }
      messages.push({ role: item.role === 'developer' ? 'system' : item.role, content: chatContent(parts) })
    } else if (item.type === 'function_call') {
      if (!assistant) {
        assistant = { role: 'assistant', content: null }
        messages.push(assistant)
      }
      assistant.tool_calls ??= []
      ;(assistant.tool_calls as JsonObject[]).push({
        id: item.call_id,
        type: 'function',
        function: { name: item.name, arguments: item.arguments },
      })
      continue
    } else if (item.type === 'function_call_output') {
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: item.output })
    } else continue
    assistant = undefined
  }
  return messages
}
