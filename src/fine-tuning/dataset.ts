/**
 * OpenAI's chat fine-tuning JSONL, checked line by line: one training example per line, each a JSON object
 * `{messages: [...], tools?: [...], parallel_tool_calls?: boolean}` (the API reference's "chat input" format,
 * FineTuneChatRequestInput). Every message has a role (system, user, assistant, tool) and content (a string or an
 * array of content parts); an assistant message may carry `weight` (0 or 1: trained against or not) and
 * `tool_calls` instead of content; a tool message answers a `tool_call_id`. Each example needs at least one
 * assistant message to learn from, and a file at least 10 examples (OpenAI's minimum).
 */

/** `line` is 1-based; 0 means the file as a whole (too few examples, nothing to train on). */
export type DatasetIssue = { line: number; message: string }

export type DatasetLimits = {
  /** Default 50,000 examples. */
  maxExamples?: number
  /** Default 1 MiB per line. */
  maxLineBytes?: number
  /** Default 10 (OpenAI's minimum). */
  minExamples?: number
  /** Issues listed before the rest is summed up in one last issue. Default 20. */
  maxIssues?: number
}

export const DATASET_DEFAULTS = {
  maxExamples: 50_000,
  maxLineBytes: 1024 * 1024,
  minExamples: 10,
  maxIssues: 20,
} as const satisfies Required<DatasetLimits>

const ROLES = ['system', 'user', 'assistant', 'tool'] as const
type Role = (typeof ROLES)[number]

/** Checks the whole file; `examples` counts the lines that are valid examples. */
export function checkChatJsonl(
  text: string | Uint8Array,
  limits: DatasetLimits = {},
): { examples: number; issues: DatasetIssue[] } {
  const { maxExamples, maxLineBytes, minExamples, maxIssues } = { ...DATASET_DEFAULTS, ...limits }
  const issues: DatasetIssue[] = []
  let more = 0
  const report = (line: number, message: string) => {
    if (issues.length < maxIssues) issues.push({ line, message })
    else more++
  }
  let examples = 0
  let lines = 0
  for (const { line, text: body, bytes } of splitLines(text)) {
    lines = line
    if (bytes > maxLineBytes) {
      report(line, `line ${line} is ${bytes} bytes, over the limit of ${maxLineBytes}`)
      continue
    }
    if (body === undefined) {
      report(line, `line ${line} is not valid UTF-8`)
      continue
    }
    if (body.trim() === '') {
      report(line, `line ${line} is blank; every line must be one JSON example`)
      continue
    }
    let value: unknown
    try {
      value = JSON.parse(body)
    } catch (e) {
      report(line, `line ${line} is not valid JSON (${(e as Error).message})`)
      continue
    }
    const problem = exampleProblem(value)
    if (problem) {
      report(line, `line ${line}: ${problem}`)
      continue
    }
    examples++
    if (examples === maxExamples + 1) report(line, `line ${line}: more than ${maxExamples} examples`)
  }
  if (more > 0) issues.push({ line: 0, message: `${more} more issue${more === 1 ? '' : 's'} not listed` })
  if (lines === 0) issues.push({ line: 0, message: `the file is empty; it needs at least ${minExamples} examples` })
  else if (examples < minExamples) {
    issues.push({
      line: 0,
      message: `the file has ${examples} valid example${examples === 1 ? '' : 's'}; it needs at least ${minExamples}`,
    })
  }
  return { examples, issues }
}

type Line = { line: number; text: string | undefined; bytes: number }

/** The file's lines (LF or CRLF); a final newline ends the last line and does not start another. */
function* splitLines(input: string | Uint8Array): Generator<Line> {
  if (typeof input === 'string') {
    // A leading BOM is dropped, as TextDecoder drops it from bytes.
    const parts = (input.startsWith('\uFEFF') ? input.slice(1) : input).split('\n')
    if (parts.at(-1) === '') parts.pop()
    for (const [i, raw] of parts.entries()) {
      const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw
      yield { line: i + 1, text, bytes: Buffer.byteLength(text) }
    }
    return
  }
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })
  let start = 0
  let line = 0
  while (start < input.length) {
    let end = input.indexOf(0x0a, start)
    if (end < 0) end = input.length
    const stop = end > start && input[end - 1] === 0x0d ? end - 1 : end
    line++
    let text: string | undefined
    try {
      text = decoder.decode(input.subarray(start, stop))
    } catch {
      text = undefined
    }
    yield { line, text, bytes: stop - start }
    start = end + 1
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`)

/** What is wrong with one example, in words; undefined when it is a valid example. */
function exampleProblem(value: unknown): string | undefined {
  if (!isObject(value)) return `an example must be a JSON object with a "messages" array, not ${describe(value)}`
  const { messages, tools, parallel_tool_calls } = value
  if (messages === undefined) return 'the example has no "messages" array'
  if (!Array.isArray(messages)) return `"messages" must be an array, not ${describe(messages)}`
  if (messages.length === 0) return '"messages" is empty'
  let trained = 0
  let assistants = 0
  for (const [i, message] of messages.entries()) {
    const problem = messageProblem(message)
    if (problem) return `messages[${i}]${problem}`
    if ((message as { role: Role }).role === 'assistant') {
      assistants++
      if ((message as { weight?: number }).weight !== 0) trained++
    }
  }
  if (assistants === 0) return 'the example has no assistant message to learn from'
  if (trained === 0) return 'every assistant message has weight 0, so there is nothing to train on'
  if (tools !== undefined) {
    if (!Array.isArray(tools)) return `"tools" must be an array, not ${describe(tools)}`
    for (const [i, tool] of tools.entries()) {
      const problem = toolProblem(tool)
      if (problem) return `tools[${i}]${problem}`
    }
  }
  if (parallel_tool_calls !== undefined && typeof parallel_tool_calls !== 'boolean') {
    return '"parallel_tool_calls" must be true or false'
  }
  return undefined
}

function messageProblem(message: unknown): string | undefined {
  if (!isObject(message)) return ` must be an object with "role" and "content", not ${describe(message)}`
  const { role, content, name, weight, tool_calls, tool_call_id } = message
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    return `.role must be one of ${ROLES.join(', ')} (got ${JSON.stringify(role) ?? 'nothing'})`
  }
  if (name !== undefined && (typeof name !== 'string' || name === '')) return '.name must be a non-empty string'
  if (role !== 'assistant' && weight !== undefined) return '.weight is only for assistant messages'
  if (role !== 'assistant' && tool_calls !== undefined) return '.tool_calls is only for assistant messages'
  if (role === 'assistant') {
    if (weight !== undefined && weight !== 0 && weight !== 1) return '.weight must be 0 or 1'
    if (tool_calls !== undefined) {
      if (!Array.isArray(tool_calls) || tool_calls.length === 0) return '.tool_calls must be a non-empty array'
      for (const [i, call] of tool_calls.entries()) {
        const problem = toolCallProblem(call)
        if (problem) return `.tool_calls[${i}]${problem}`
      }
      if (content === undefined || content === null) return undefined
    }
  }
  if (role === 'tool' && (typeof tool_call_id !== 'string' || tool_call_id === '')) {
    return '.tool_call_id must name the tool call this message answers'
  }
  return contentProblem(role as Role, content)
}

function contentProblem(role: Role, content: unknown): string | undefined {
  if (typeof content === 'string') return undefined
  if (content === undefined || content === null) {
    return role === 'assistant'
      ? '.content is missing (an assistant message needs content or tool_calls)'
      : '.content is missing'
  }
  if (!Array.isArray(content)) return `.content must be a string or an array of content parts, not ${describe(content)}`
  if (content.length === 0) return '.content is an empty array'
  // Text everywhere; images only in a user's message (OpenAI's vision fine-tuning).
  const allowed = role === 'user' ? ['text', 'image_url'] : ['text']
  for (const [i, part] of content.entries()) {
    if (!isObject(part) || typeof part.type !== 'string' || !allowed.includes(part.type)) {
      return `.content[${i}] must be a content part of type ${allowed.join(' or ')}`
    }
    if (part.type === 'text' && typeof part.text !== 'string') return `.content[${i}].text must be a string`
    if (part.type === 'image_url' && !(isObject(part.image_url) && typeof part.image_url.url === 'string')) {
      return `.content[${i}].image_url.url must be a string`
    }
  }
  return undefined
}

function toolCallProblem(call: unknown): string | undefined {
  if (!isObject(call)) return ' must be an object'
  if (typeof call.id !== 'string' || call.id === '') return '.id must be a non-empty string'
  if (call.type !== 'function') return '.type must be "function"'
  if (!isObject(call.function) || typeof call.function.name !== 'string' || call.function.name === '') {
    return '.function.name must be a non-empty string'
  }
  if (typeof call.function.arguments !== 'string') return '.function.arguments must be a string (JSON text)'
  return undefined
}

function toolProblem(tool: unknown): string | undefined {
  if (!isObject(tool) || tool.type !== 'function') return ' must be {"type": "function", "function": {...}}'
  if (!isObject(tool.function) || typeof tool.function.name !== 'string' || tool.function.name === '') {
    return '.function.name must be a non-empty string'
  }
  if (tool.function.parameters !== undefined && !isObject(tool.function.parameters)) {
    return '.function.parameters must be a JSON Schema object'
  }
  return undefined
}
