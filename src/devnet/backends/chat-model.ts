import { randomBytes } from 'node:crypto'
import { type ChatRequest, stopStrings } from './chat-request.ts'
import { type ChatTool, renderChatPrompt, renderToolCall } from './chat-template.ts'
import { type Decoded, decode } from './decode.ts'
import { BackendError, contextOverflow } from './errors.ts'
import { valueForSchema } from './json-value.ts'
import { type TokenLogprob, tokenLogprobs } from './logprobs.ts'
import type { DevBackendConfig } from './options.ts'
import { type WordPicker, writeProse } from './prose.ts'
import { type Rng, seededRng } from './rng.ts'
import { countTokens, tokenize } from './tokenizer.ts'

export type ToolCallOutput = {
  id: string
  name: string
  arguments: string
  /** The arguments as streamed, token by token. */
  argumentPieces: string[]
}

export type ChatChoice =
  | { kind: 'text'; decoded: Decoded; logprobs: TokenLogprob[] | null }
  | { kind: 'tool_calls'; calls: ToolCallOutput[]; completionTokens: number }

export type ChatPlan = { promptTokens: number; choices: ChatChoice[] }

/** What `response_format: {type: "json_object"}` gets: some object, as no schema says which. */
const JSON_OBJECT_SCHEMA = {
  type: 'object',
  properties: {
    answer: { type: 'string' },
    confidence: { type: 'number', minimum: 0, maximum: 1 },
    tags: { type: 'array', items: { type: 'string' } },
  },
}

/**
 * The dev chat model: every output is a pure function of the rendered prompt, `seed` and the choice index, so the
 * same request always gets the same content, streamed or not. Tool calls and structured outputs are built from the
 * request's schemas; otherwise it writes deterministic prose, its words picked by `pickWord` when a loaded adapter
 * is asked for (lora-adapters.ts).
 */
export function planChat(req: ChatRequest, config: DevBackendConfig, pickWord?: WordPicker): ChatPlan {
  const tools: ChatTool[] = req.tools ?? []
  const prompt = renderChatPrompt(req.messages, tools)
  const promptTokens = countTokens(prompt)
  const requested = req.max_completion_tokens ?? req.max_tokens
  const param = req.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens'
  if (
    promptTokens > config.maxContextTokens ||
    (requested != null && promptTokens + requested > config.maxContextTokens)
  ) {
    throw contextOverflow(config.maxContextTokens, promptTokens, requested ?? 0, requested != null ? param : 'messages')
  }
  const budget = requested ?? config.maxContextTokens - promptTokens
  const toCall = toolsToCall(req, tools)
  const structured = structuredSchema(req)
  const choices = Array.from({ length: req.n ?? 1 }, (_, index): ChatChoice => {
    const seed = `${prompt}\u0000${req.seed ?? ''}\u0000${index}`
    const rng = seededRng('chat', seed)
    if (toCall.length > 0) {
      const calls = callTools(toCall, req.parallel_tool_calls !== false, rng)
      const completionTokens = countTokens(calls.map(renderToolCall).join('\n'))
      // A tool call cut short is no tool call: like vLLM's parsers, fall back to plain text.
      if (completionTokens <= budget) return { kind: 'tool_calls', calls, completionTokens }
    }
    const text = structured ? structuredText(structured, rng) : writeProse(rng, 16 + rng.int(48), pickWord)
    const decoded = decode(text, budget, stopStrings(req.stop))
    const logprobs = req.logprobs ? tokenLogprobs(seed, decoded.pieces, req.top_logprobs ?? 0) : null
    return { kind: 'text', decoded, logprobs }
  })
  return { promptTokens, choices }
}

/** Which tools the model calls: only when asked to, or (for "auto") when the user has just spoken. */
function toolsToCall(req: ChatRequest, tools: ChatTool[]): ChatTool[] {
  const choice = req.tool_choice ?? 'auto'
  if (tools.length === 0 || choice === 'none') return []
  if (typeof choice === 'object') {
    const named = tools.find((t) => t.function.name === choice.function.name)
    if (!named)
      throw new BackendError(400, `tool_choice names an unknown function: ${choice.function.name}`, 'tool_choice')
    return [named]
  }
  if (choice === 'auto' && req.messages.at(-1)?.role !== 'user') return []
  return tools
}

function callTools(tools: ChatTool[], parallel: boolean, rng: Rng): ToolCallOutput[] {
  const first = rng.int(tools.length)
  const picked =
    parallel && tools.length >= 2 ? [first, (first + 1 + rng.int(tools.length - 1)) % tools.length] : [first]
  return picked.map((i) => {
    const { name, parameters } = tools[i]!.function
    const args = JSON.stringify(parameters ? valueForSchema(parameters, rng) : {})
    return { id: `call_${randomBytes(12).toString('hex')}`, name, arguments: args, argumentPieces: tokenize(args) }
  })
}

type Structured = { schema: unknown } | { choice: string[] }

function structuredSchema(req: ChatRequest): Structured | undefined {
  const format = req.response_format
  if (format?.type === 'json_schema') return { schema: format.json_schema?.schema ?? JSON_OBJECT_SCHEMA }
  if (format?.type === 'json_object') return { schema: JSON_OBJECT_SCHEMA }
  const outputs = req.structured_outputs
  if (outputs?.choice) return { choice: outputs.choice }
  if (typeof outputs?.json === 'string') {
    try {
      return { schema: JSON.parse(outputs.json) }
    } catch {
      throw new BackendError(400, 'structured_outputs.json is not valid JSON', 'structured_outputs.json')
    }
  }
  if (outputs?.json) return { schema: outputs.json }
  return undefined
}

function structuredText(structured: Structured, rng: Rng): string {
  if ('choice' in structured) return rng.pick(structured.choice)
  return JSON.stringify(valueForSchema(structured.schema, rng))
}
