/** Helpers and response shapes for the dev backends' HTTP tests. */

export type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number }
export type TokenLogprob = {
  token: string
  logprob: number
  bytes: number[]
  top_logprobs: Array<{ token: string; logprob: number }>
}
export type ToolCall = { id: string; type: string; function: { name: string; arguments: string } }
export type ChatMessage = { role: string; content: string | null; tool_calls: ToolCall[] }
export type ChatCompletion = {
  id: string
  object: string
  created: number
  model: string
  choices: Array<{
    index: number
    message: ChatMessage
    logprobs: { content: TokenLogprob[] } | null
    finish_reason: string
  }>
  usage: Usage
}
export type ToolCallDelta = {
  index: number
  id?: string
  type?: string
  function: { name?: string; arguments: string }
}
export type ChatChunk = {
  id: string
  object: string
  created: number
  choices: Array<{
    index: number
    delta: { role?: string; content?: string; tool_calls?: ToolCallDelta[] }
    logprobs: { content: TokenLogprob[] } | null
    finish_reason: string | null
  }>
  usage?: Usage | null
}
export type LegacyLogprobs = { tokens: string[]; text_offset: number[] }
export type Completion = {
  id: string
  object: string
  model: string
  choices: Array<{ index: number; text: string; logprobs: LegacyLogprobs | null; finish_reason: string | null }>
  usage: Usage
}
export type ErrorBody = { error: { message: string; type: string; param: string | null; code: number } }

export async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  })
}

/**
 * Splits an SSE body into its data payloads, checking the framing on the way: every event is exactly one
 * `data: ` line followed by a blank line, and nothing follows `data: [DONE]`.
 */
export function sseEvents<T>(text: string): { chunks: T[]; done: boolean } {
  const events = text.split('\n\n')
  if (events.at(-1) !== '')
    throw new Error(`SSE body does not end with a blank line: ${JSON.stringify(text.slice(-40))}`)
  events.pop()
  const chunks: T[] = []
  let done = false
  for (const event of events) {
    if (!event.startsWith('data: ') || event.includes('\n')) throw new Error(`not a single data line: ${event}`)
    if (done) throw new Error('an event follows [DONE]')
    const data = event.slice('data: '.length)
    if (data === '[DONE]') done = true
    else chunks.push(JSON.parse(data) as T)
  }
  return { chunks, done }
}

/** Reads a whole streamed chat completion: the chunks, and the content of each choice. */
export async function readChatStream(response: Response) {
  const { chunks, done } = sseEvents<ChatChunk>(await response.text())
  const content: string[] = []
  for (const chunk of chunks) {
    for (const choice of chunk.choices) {
      if (typeof choice.delta.content === 'string') {
        content[choice.index] = (content[choice.index] ?? '') + choice.delta.content
      }
    }
  }
  return { chunks, done, content }
}
