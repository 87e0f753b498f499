/**
 * The dev chat model's prompt template, ChatML-like. `usage.prompt_tokens` counts the tokens of this rendering, as
 * vLLM counts the tokens of the model's own chat template: roles, markers and tool definitions included.
 */

export type ChatContentPart = { type: string; text?: string }

export type ChatMessage = {
  role: string
  content?: string | ChatContentPart[] | null
  name?: string
  tool_calls?: Array<{ id?: string; function: { name: string; arguments: string } }>
  tool_call_id?: string
}

export type ChatTool = { function: { name: string; description?: string; parameters?: unknown } }

/** Non-text parts (images, audio, files) become a placeholder: the dev model reads text only. */
function contentText(content: ChatMessage['content']): string {
  if (content == null) return ''
  if (typeof content === 'string') return content
  return content.map((part) => (typeof part.text === 'string' ? part.text : `<|${part.type}|>`)).join('')
}

export function renderToolCall(call: { name: string; arguments: string }): string {
  return `<tool_call>\n{"name": ${JSON.stringify(call.name)}, "arguments": ${call.arguments}}\n</tool_call>`
}

function renderMessage(message: ChatMessage): string {
  let body = contentText(message.content)
  if (message.tool_calls?.length) {
    const calls = message.tool_calls.map((call) => renderToolCall(call.function)).join('\n')
    body = body ? `${body}\n${calls}` : calls
  }
  if (message.role === 'tool' && message.tool_call_id) body = `[${message.tool_call_id}] ${body}`
  const role = message.name ? `${message.role} name=${message.name}` : message.role
  return `<|im_start|>${role}\n${body}<|im_end|>\n`
}

export function renderChatPrompt(messages: readonly ChatMessage[], tools: readonly ChatTool[] = []): string {
  let prompt = ''
  if (tools.length > 0) {
    const definitions = tools.map((tool) => JSON.stringify(tool.function)).join('\n')
    prompt += `<|im_start|>system\n# Tools\n${definitions}<|im_end|>\n`
  }
  for (const message of messages) prompt += renderMessage(message)
  // The generation prompt: the model writes the assistant turn.
  return `${prompt}<|im_start|>assistant\n`
}
