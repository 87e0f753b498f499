import { z } from 'zod'
import { badRequest, type GatewayError } from './openai-error.ts'

/**
 * Light, spec-faithful checks of OpenAI request bodies: enough to answer a malformed request with an OpenAI 400
 * (with `param`) before any provider is paid, and to read what routing and metering need. The body itself is
 * forwarded as received: unknown fields (vLLM extras, tools, response_format, logprobs...) are never stripped.
 */

type RequestView = {
  model: string
  stream: boolean
  includeUsage: boolean
}

type LegacyRewrite = {
  /** The whole body to forward instead of the received one; set only when legacy fields had to be translated. */
  rewrite?: Record<string, unknown>
}

export type ChatMessage = { role: string; content?: unknown } & Record<string, unknown>

export type ChatCompletionView = RequestView &
  LegacyRewrite & {
    messages: ChatMessage[]
    n: number
    /** `max_completion_tokens`, else `max_tokens` (LangChain sends the former for some model names). */
    maxTokens: number | undefined
  }

export type CompletionView = RequestView &
  LegacyRewrite & {
    prompt: unknown
    n: number
    maxTokens: number | undefined
  }

export type EmbeddingsView = RequestView & {
  stream: false
  includeUsage: false
  /** As requested; OpenAI's default is float (the SDKs send base64 unless told otherwise). */
  encodingFormat: 'float' | 'base64'
}

export type ImageGenerationView = RequestView & {
  n: number
  responseFormat: 'url' | 'b64_json' | undefined
}

export const TRANSCRIPTION_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const
export type TranscriptionFormat = (typeof TRANSCRIPTION_FORMATS)[number]

export type TranscriptionView = RequestView & {
  responseFormat: TranscriptionFormat
}

export const SPEECH_FORMATS = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'] as const
export type SpeechFormat = (typeof SPEECH_FORMATS)[number]
/** OpenAI's limit on the text of one speech request, in characters. */
export const MAX_SPEECH_INPUT = 4096

export type SpeechView = RequestView & {
  stream: false
  includeUsage: false
  /** As requested; OpenAI's default is mp3. */
  responseFormat: SpeechFormat
}

const model = z.string().min(1)
const optionalBoolean = z.boolean().nullish()
// zod reports a string sent for an integer as "expected number"; OpenAI words it "expected an integer".
export const integer = z.int({ error: (issue) => (issue.code === 'invalid_type' ? 'expected an integer' : undefined) })
const positiveInt = integer.positive().nullish()
const tokenLimit = integer.nonnegative().nullish()
const streamOptions = z.looseObject({ include_usage: z.boolean().nullish() }).nullish()
const tokenIds = z.array(integer).min(1)
const prompt = z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)], {
  error: 'expected a string, an array of strings, an array of token ids, or an array of token-id arrays',
})

/** A number in [min, max], as OpenAI bounds its sampling parameters. */
export const numberIn = (min: number, max: number) => z.number().min(min).max(max).nullish()

/** The sampling parameters OpenAI bounds, with its bounds: refused here, before any provider is involved. */
const samplingFields = {
  temperature: numberIn(0, 2),
  top_p: numberIn(0, 1),
  presence_penalty: numberIn(-2, 2),
  frequency_penalty: numberIn(-2, 2),
}

export const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const

export const chatCompletionSchema = z.looseObject({
  model,
  messages: z.array(z.looseObject({ role: z.enum(CHAT_ROLES) })).min(1),
  stream: optionalBoolean,
  stream_options: streamOptions,
  n: integer.min(1).max(128).nullish(),
  max_tokens: tokenLimit,
  max_completion_tokens: tokenLimit,
  ...samplingFields,
  logprobs: optionalBoolean,
  top_logprobs: integer.min(0).max(20).nullish(),
  seed: integer.nullish(),
})

const completionSchema = z.looseObject({
  model,
  // vLLM accepts prompt_embeds in place of a prompt.
  prompt: prompt.optional(),
  stream: optionalBoolean,
  stream_options: streamOptions,
  n: integer.min(1).max(128).nullish(),
  max_tokens: tokenLimit,
  ...samplingFields,
  logprobs: integer.min(0).max(5).nullish(),
  best_of: integer.min(0).max(20).nullish(),
  seed: integer.nullish(),
})

const embeddingsSchema = z.looseObject({
  model,
  // vLLM's chat-style embedding requests carry `messages` instead of `input`.
  input: prompt.optional(),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: positiveInt,
})

const imageGenerationSchema = z.looseObject({
  model,
  prompt: z.string().min(1),
  n: integer.min(1).max(10).nullish(),
  response_format: z.enum(['url', 'b64_json']).nullish(),
  size: z.string().nullish(),
  stream: optionalBoolean,
})

const formBoolean = z.enum(['true', 'false'], { error: 'expected "true" or "false"' })
const formNumber = z
  .string()
  .refine((value) => value.trim() !== '' && Number.isFinite(Number(value)), { error: 'expected a number' })

const transcriptionSchema = z.looseObject({
  model,
  response_format: z.enum(TRANSCRIPTION_FORMATS).optional(),
  stream: formBoolean.optional(),
  // vLLM's name for include_usage on transcription streams.
  stream_include_usage: formBoolean.optional(),
  temperature: formNumber.optional(),
  language: z.string().optional(),
  prompt: z.string().optional(),
})

const speechSchema = z.looseObject({
  model,
  input: z.string().min(1),
  voice: z.union([z.string().min(1), z.looseObject({ id: z.string().min(1) })], {
    error: 'expected a voice name, or an object with the id of a custom voice',
  }),
  response_format: z.enum(SPEECH_FORMATS).nullish(),
  speed: numberIn(0.25, 4),
  instructions: z.string().nullish(),
  stream_format: z.enum(['sse', 'audio']).nullish(),
  // 0G's extra (0g-protocol.md §11): the most seconds of audio the call may produce, and be billed for.
  max_duration: z.number().positive().nullish(),
})

type ChatCompletionBody = z.output<typeof chatCompletionSchema>

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
const nullishBoolean = (value: unknown) => value === undefined || value === null || typeof value === 'boolean'
/** What `integer.min(min).max(max).nullish()` accepts: nothing, or a safe integer in [min, max]. */
const nullishInt = (value: unknown, min: number, max = Number.MAX_SAFE_INTEGER) =>
  value === undefined ||
  value === null ||
  (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max)
/** What `numberIn(min, max)` accepts. */
const nullishNumber = (value: unknown, min: number, max: number) =>
  value === undefined || value === null || (typeof value === 'number' && value >= min && value <= max)
const ROLES: ReadonlySet<string> = new Set(CHAT_ROLES)
const SAMPLING_BOUNDS: ReadonlyArray<[string, [number, number]]> = [
  ['temperature', [0, 2]],
  ['top_p', [0, 1]],
  ['presence_penalty', [-2, 2]],
  ['frequency_penalty', [-2, 2]],
]

/**
 * A well-formed chat body, recognised by hand: what chatCompletionSchema accepts, read without building its copy of
 * the body and of every message (about 30 µs of a request run cold). Anything else, valid in a less common way or
 * not valid at all, goes to the schema, which has the final word and words the errors. Never accepts what the
 * schema refuses (validate.test.ts checks the two against each other).
 */
export function wellFormedChatBody(json: Record<string, unknown>): ChatCompletionBody | undefined {
  if (typeof json.model !== 'string' || json.model === '') return undefined
  const messages = json.messages
  if (!Array.isArray(messages) || messages.length === 0) return undefined
  for (const message of messages) if (!isRecord(message) || !ROLES.has(message.role as string)) return undefined
  if (!nullishBoolean(json.stream) || !nullishBoolean(json.logprobs)) return undefined
  const options = json.stream_options
  if (options !== undefined && options !== null && !(isRecord(options) && nullishBoolean(options.include_usage)))
    return undefined
  if (!nullishInt(json.n, 1, 128) || !nullishInt(json.max_tokens, 0) || !nullishInt(json.max_completion_tokens, 0))
    return undefined
  if (!nullishInt(json.top_logprobs, 0, 20) || !nullishInt(json.seed, Number.MIN_SAFE_INTEGER)) return undefined
  for (const [field, [min, max]] of SAMPLING_BOUNDS) if (!nullishNumber(json[field], min, max)) return undefined
  return json as ChatCompletionBody
}

export function validateChatCompletion(json: Record<string, unknown>): ChatCompletionView {
  const body = wellFormedChatBody(json) ?? parse(chatCompletionSchema, json)
  const stream = body.stream ?? false
  checkStreamOptions(stream, body.stream_options)
  return {
    model: body.model,
    stream,
    includeUsage: stream && body.stream_options?.include_usage === true,
    messages: body.messages as ChatMessage[],
    n: body.n ?? 1,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    ...legacyStructuredOutputs(json),
  }
}

export function validateCompletion(json: Record<string, unknown>): CompletionView {
  const body = parse(completionSchema, json)
  if (body.prompt === undefined && json.prompt_embeds === undefined) throw missing('prompt')
  const stream = body.stream ?? false
  checkStreamOptions(stream, body.stream_options)
  return {
    model: body.model,
    stream,
    includeUsage: stream && body.stream_options?.include_usage === true,
    prompt: body.prompt ?? json.prompt_embeds,
    n: body.n ?? 1,
    maxTokens: body.max_tokens ?? undefined,
    ...legacyStructuredOutputs(json),
  }
}

export function validateEmbeddings(json: Record<string, unknown>): EmbeddingsView {
  const body = parse(embeddingsSchema, json)
  if (body.input === undefined && json.messages === undefined) throw missing('input')
  return { model: body.model, stream: false, includeUsage: false, encodingFormat: body.encoding_format ?? 'float' }
}

export function validateImageGeneration(json: Record<string, unknown>): ImageGenerationView {
  const body = parse(imageGenerationSchema, json)
  return {
    model: body.model,
    stream: body.stream ?? false,
    includeUsage: false,
    n: body.n ?? 1,
    responseFormat: body.response_format ?? undefined,
  }
}

/** POST /v1/audio/speech: OpenAI's body, checked as OpenAI does, and 0G's max_duration. */
export function validateSpeech(json: Record<string, unknown>): SpeechView {
  const body = parse(speechSchema, json)
  // OpenAI counts characters, not UTF-16 code units.
  const length = [...body.input].length
  if (length > MAX_SPEECH_INPUT) {
    throw badRequest(
      `Invalid 'input': string too long. Expected a string with maximum length ${MAX_SPEECH_INPUT}, but got a string with length ${length} instead.`,
      'input',
      'string_above_max_length',
    )
  }
  if (body.stream_format === 'sse') {
    // 0G providers answer speech whole (a finished clip chunked into events would only fake a stream).
    throw badRequest(
      "stream_format 'sse' is not available: 0G providers answer speech whole, as audio bytes. Use 'audio'.",
      'stream_format',
      'unsupported_value',
    )
  }
  return { model: body.model, stream: false, includeUsage: false, responseFormat: body.response_format ?? 'mp3' }
}

/** The text fields of a multipart transcription request (the file part is the caller's to stream). */
export function validateTranscriptionFields(fields: Record<string, string>): TranscriptionView {
  const body = parse(transcriptionSchema, fields)
  const stream = body.stream === 'true'
  return {
    model: body.model,
    stream,
    includeUsage: stream && body.stream_include_usage === 'true',
    responseFormat: body.response_format ?? 'json',
  }
}

function checkStreamOptions(stream: boolean, options: unknown): void {
  // OpenAI and vLLM both refuse this; saying so here names the parameter before a provider is involved.
  if (!stream && options !== undefined && options !== null) {
    throw badRequest("Invalid 'stream_options': only allowed when 'stream' is true.", 'stream_options')
  }
}

/** vLLM's removed request fields and where they live now (vLLM PR #29326, v0.12: the old names are ignored). */
const LEGACY_GUIDED_FIELDS = {
  guided_json: 'json',
  guided_regex: 'regex',
  guided_choice: 'choice',
  guided_grammar: 'grammar',
  guided_whitespace_pattern: 'whitespace_pattern',
} as const

/** The `structured_outputs` keys of which vLLM allows one per request (StructuredOutputsParams.__post_init__). */
const STRUCTURED_OUTPUT_CONSTRAINTS = ['json', 'regex', 'choice', 'grammar', 'json_object', 'structural_tag']

const legacyFieldSchemas: Record<keyof typeof LEGACY_GUIDED_FIELDS, z.ZodType> = {
  guided_json: z.union([z.string(), z.record(z.string(), z.unknown())], { error: 'expected a JSON schema' }),
  guided_regex: z.string(),
  guided_choice: z.array(z.string()).min(1),
  guided_grammar: z.string(),
  guided_whitespace_pattern: z.string(),
}

/**
 * Translates vLLM's legacy `guided_*` fields into `structured_outputs`. Current vLLM would silently ignore them and
 * return unconstrained output with a 200 (acceptance case 14), which a caller relying on them cannot detect.
 */
function legacyStructuredOutputs(json: Record<string, unknown>): LegacyRewrite {
  const legacy = (Object.keys(LEGACY_GUIDED_FIELDS) as (keyof typeof LEGACY_GUIDED_FIELDS)[]).filter(
    (field) => json[field] !== undefined && json[field] !== null,
  )
  if (legacy.length === 0) return {}
  const existing = json.structured_outputs ?? {}
  if (typeof existing !== 'object' || existing === null || Array.isArray(existing)) {
    throw badRequest("Invalid type for 'structured_outputs': expected an object.", 'structured_outputs')
  }
  const structured: Record<string, unknown> = { ...existing }
  const rewrite: Record<string, unknown> = { ...json }
  for (const field of legacy) {
    parse(z.object({ [field]: legacyFieldSchemas[field] }), { [field]: json[field] })
    const target = LEGACY_GUIDED_FIELDS[field]
    if (structured[target] !== undefined && structured[target] !== null) {
      throw badRequest(`'${field}' conflicts with 'structured_outputs.${target}'; send only the latter.`, field)
    }
    structured[target] = json[field]
    delete rewrite[field]
  }
  const constraints = STRUCTURED_OUTPUT_CONSTRAINTS.filter(
    (key) => structured[key] !== undefined && structured[key] !== null,
  )
  if (constraints.length > 1) {
    throw badRequest(
      `Only one kind of structured output constraint is allowed, but got ${constraints.join(', ')} ` +
        `(from ${legacy.join(', ')}).`,
      legacy[0],
    )
  }
  rewrite.structured_outputs = structured
  return { rewrite }
}

/** `value` checked by `schema`, or the 400 OpenAI would answer for its first issue (with `param`). */
export function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value, { reportInput: true })
  if (result.success) return result.data
  throw issueError(result.error.issues[0]!)
}

function missing(param: string): GatewayError {
  return badRequest(`Missing required parameter: '${param}'.`, param)
}

/** One zod issue as OpenAI words it, e.g. "Invalid type for 'n': expected an integer, but got a string instead." */
function issueError(issue: z.core.$ZodIssue): GatewayError {
  const param = paramPath(issue.path)
  const input = 'input' in issue ? issue.input : undefined
  if (input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_value')) return missing(param)
  switch (issue.code) {
    case 'invalid_type': {
      // Messages written in this file start with "expected"; zod's own start with "Invalid input".
      const expected = issue.message.startsWith('expected ') ? issue.message : `expected ${article(issue.expected)}`
      return badRequest(`Invalid type for '${param}': ${expected}, but got ${describe(input)} instead.`, param)
    }
    case 'too_big':
      return badRequest(`Invalid '${param}': expected a value <= ${issue.maximum}, but got ${describe(input)}.`, param)
    case 'too_small':
      return badRequest(`Invalid '${param}': ${tooSmall(issue)}, but got ${describe(input)}.`, param)
    case 'invalid_value':
      return badRequest(
        `Invalid value for '${param}': ${JSON.stringify(input)}. Supported values are: ${issue.values.map((v) => `'${String(v)}'`).join(', ')}.`,
        param,
      )
    default:
      return badRequest(`Invalid '${param}': ${issue.message}.`, param)
  }
}

function tooSmall(issue: z.core.$ZodIssueTooSmall): string {
  if (issue.origin === 'array') return `expected an array with at least ${issue.minimum} item(s)`
  if (issue.origin === 'string') return 'expected a non-empty string'
  return `expected a value ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`
}

function paramPath(path: PropertyKey[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out ? `.${String(part)}` : String(part)
  }
  return out
}

function article(expected: string): string {
  if (expected === 'array' || expected === 'object') return `an ${expected}`
  return `a ${expected}`
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array'
  if (typeof value === 'number') return Number.isInteger(value) ? `the integer ${value}` : `the number ${value}`
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string'
  return `a ${typeof value}`
}
