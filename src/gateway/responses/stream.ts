import type { StreamTranslator } from '../forward.ts'
import {
  failedResponse,
  finishOf,
  functionCallItem,
  type JsonObject,
  messageItem,
  newId,
  outputText,
  type ResponseDraft,
  reasoningItem,
  reasoningOf,
  responseObject,
  responseUsage,
} from './response.ts'

const EMPTY = new Uint8Array(0)
const LF = 0x0a

type Item =
  | { kind: 'message' | 'reasoning'; index: number; id: string; text: string }
  | { kind: 'function_call'; index: number; id: string; callId: string; name: string; arguments: string }

/** Where the first complete event in `buf` (from `from`) ends, past its blank line, or -1. */
function eventEnd(buf: Buffer, from: number): number {
  for (let i = buf.indexOf(LF, from); i !== -1; i = buf.indexOf(LF, i + 1)) {
    const next = buf[i + 1] === 0x0d ? i + 2 : i + 1
    if (buf[next] === LF) return next + 1
  }
  return -1
}

/** The `data:` lines of one event, joined as SSE joins them. */
function dataOf(event: string): string {
  const lines: string[] = []
  for (const line of event.split(/\r?\n/)) if (line.startsWith('data:')) lines.push(line.slice(line[5] === ' ' ? 6 : 5))
  return lines.join('\n')
}

/**
 * Turns a provider's chat-completion event stream into the Responses API's: `response.created` and
 * `response.in_progress` with the first chunk, an output item per message, reasoning or tool call (opened with
 * `output_item.added`, filled by deltas, closed with the `.done` events), then `response.completed` (or
 * `response.incomplete`, `response.failed`) carrying the whole response and its usage. The Responses stream has no
 * `[DONE]`. Provider bytes may be split anywhere, mid-event or mid-character: only complete events are read.
 */
export class ResponsesStream implements StreamTranslator {
  readonly #draft: ResponseDraft
  readonly #onFinal: (response: JsonObject) => void
  #pending: Buffer = Buffer.alloc(0)
  #sequence = 0
  #started = false
  #finished = false
  #model: string | undefined
  #usage: JsonObject | null = null
  #finishReason: unknown = null
  readonly #items: Item[] = []
  /** The message or reasoning item that text deltas of its kind extend. */
  #open: Extract<Item, { kind: 'message' | 'reasoning' }> | undefined
  /** Function-call items by the chat tool call's index. */
  readonly #calls = new Map<number, Extract<Item, { kind: 'function_call' }>>()
  readonly #closed = new Set<Item>()

  /** `onFinal` gets the final response (completed, incomplete or failed), once. */
  constructor(draft: ResponseDraft, onFinal: (response: JsonObject) => void) {
    this.#draft = draft
    this.#onFinal = onFinal
  }

  push(bytes: Uint8Array): Uint8Array {
    if (this.#finished || bytes.length === 0) return EMPTY
    const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
    const out: string[] = []
    let start = 0
    for (let end = eventEnd(buf, 0); end !== -1 && !this.#finished; end = eventEnd(buf, start)) {
      this.#read(dataOf(buf.toString('utf8', start, end)), out)
      start = end
    }
    // Kept as bytes: a character cut in two by the provider's chunks is whole once the rest arrives.
    this.#pending = this.#finished || start >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(start))
    return out.length ? Buffer.from(out.join('')) : EMPTY
  }

  fail(message: string): Uint8Array {
    if (this.#finished) return EMPTY
    const out: string[] = []
    this.#fail(message, out)
    return Buffer.from(out.join(''))
  }

  #read(data: string, out: string[]): void {
    if (data === '') return
    if (data.trim() === '[DONE]') {
      this.#complete(out)
      return
    }
    let chunk: JsonObject
    try {
      chunk = JSON.parse(data)
    } catch {
      return
    }
    if (!chunk || typeof chunk !== 'object') return
    if (chunk.error) {
      const error = chunk.error as JsonObject
      const message = typeof error.message === 'string' ? error.message : JSON.stringify(error)
      this.#fail(`the provider failed: ${message}`, out)
      return
    }
    if (typeof chunk.model === 'string') this.#model ??= chunk.model
    this.#start(out)
    if (chunk.usage && typeof chunk.usage === 'object') this.#usage = responseUsage(chunk.usage)
    const choices = Array.isArray(chunk.choices) ? (chunk.choices as JsonObject[]) : []
    // A Responses call asks for one choice; any other is not the client's.
    const choice = choices.find((c) => (c.index ?? 0) === 0)
    if (!choice) return
    const delta = (choice.delta ?? {}) as JsonObject
    const reasoning = reasoningOf(delta)
    if (reasoning !== undefined) this.#text('reasoning', reasoning, out)
    if (typeof delta.content === 'string' && delta.content !== '') this.#text('message', delta.content, out)
    if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls) this.#toolCall(call as JsonObject, out)
    if (choice.finish_reason != null) this.#finishReason = choice.finish_reason
  }

  #emit(out: string[], type: string, fields: JsonObject): void {
    out.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields, sequence_number: this.#sequence++ })}\n\n`)
  }

  #start(out: string[]): void {
    if (this.#started) return
    this.#started = true
    const response = responseObject(this.#draft, { status: 'in_progress', output: [], model: this.#model })
    this.#emit(out, 'response.created', { response })
    this.#emit(out, 'response.in_progress', { response })
  }

  #text(kind: 'message' | 'reasoning', delta: string, out: string[]): void {
    let item = this.#open
    if (item?.kind !== kind) {
      if (item) this.#close(item, 'completed', out)
      item = { kind, index: this.#items.length, id: newId(kind === 'message' ? 'msg' : 'rs'), text: '' }
      this.#add(item, out)
      this.#open = item
    }
    if (delta === '') return
    item.text += delta
    const type = kind === 'message' ? 'response.output_text.delta' : 'response.reasoning_text.delta'
    const where = { item_id: item.id, output_index: item.index, content_index: 0 }
    this.#emit(out, type, kind === 'message' ? { ...where, delta, logprobs: [] } : { ...where, delta })
  }

  #toolCall(call: JsonObject, out: string[]): void {
    const index = typeof call.index === 'number' ? call.index : 0
    const fn = (call.function ?? {}) as JsonObject
    let item = this.#calls.get(index)
    if (!item) {
      // The text before a call is complete once the model turns to calling.
      if (this.#open) this.#close(this.#open, 'completed', out)
      this.#open = undefined
      item = {
        kind: 'function_call',
        index: this.#items.length,
        id: newId('fc'),
        callId: typeof call.id === 'string' ? call.id : newId('call'),
        name: typeof fn.name === 'string' ? fn.name : '',
        arguments: '',
      }
      this.#calls.set(index, item)
      this.#add(item, out)
    } else if (typeof fn.name === 'string' && !item.name) item.name = fn.name
    if (typeof fn.arguments === 'string' && fn.arguments !== '') {
      item.arguments += fn.arguments
      this.#emit(out, 'response.function_call_arguments.delta', {
        item_id: item.id,
        output_index: item.index,
        delta: fn.arguments,
      })
    }
  }

  #snapshot(item: Item, status: string): JsonObject {
    if (item.kind === 'function_call') return functionCallItem(item.id, status, item)
    if (item.kind === 'reasoning') return reasoningItem(item.id, status, item.text)
    return messageItem(item.id, status, item.text)
  }

  #add(item: Item, out: string[]): void {
    this.#items.push(item)
    const added =
      item.kind === 'function_call'
        ? functionCallItem(item.id, 'in_progress', { ...item, arguments: '' })
        : item.kind === 'reasoning'
          ? reasoningItem(item.id, 'in_progress', null)
          : messageItem(item.id, 'in_progress', null)
    this.#emit(out, 'response.output_item.added', { output_index: item.index, item: added })
    if (item.kind === 'function_call') return
    const part = item.kind === 'message' ? outputText('') : { type: 'reasoning_text', text: '' }
    this.#emit(out, 'response.content_part.added', {
      item_id: item.id,
      output_index: item.index,
      content_index: 0,
      part,
    })
  }

  #close(item: Item, status: string, out: string[]): void {
    if (this.#closed.has(item)) return
    this.#closed.add(item)
    const where = { item_id: item.id, output_index: item.index }
    if (item.kind === 'function_call') {
      this.#emit(out, 'response.function_call_arguments.done', { ...where, name: item.name, arguments: item.arguments })
    } else if (item.kind === 'message') {
      this.#emit(out, 'response.output_text.done', { ...where, content_index: 0, text: item.text, logprobs: [] })
      this.#emit(out, 'response.content_part.done', { ...where, content_index: 0, part: outputText(item.text) })
    } else {
      this.#emit(out, 'response.reasoning_text.done', { ...where, content_index: 0, text: item.text })
      const part = { type: 'reasoning_text', text: item.text }
      this.#emit(out, 'response.content_part.done', { ...where, content_index: 0, part })
    }
    this.#emit(out, 'response.output_item.done', { output_index: item.index, item: this.#snapshot(item, status) })
  }

  #complete(out: string[]): void {
    this.#start(out)
    const finish = finishOf(this.#finishReason)
    const status = finish.status === 'completed' ? 'completed' : 'incomplete'
    // An answer with nothing in it still has its (empty) message, as the non-streamed translation gives.
    if (this.#items.length === 0) this.#text('message', '', out)
    for (const item of this.#items) this.#close(item, status, out)
    const response = responseObject(this.#draft, {
      ...finish,
      output: this.#items.map((item) => this.#snapshot(item, status)),
      model: this.#model,
      usage: this.#usage,
    })
    this.#emit(out, finish.status === 'completed' ? 'response.completed' : 'response.incomplete', { response })
    this.#end(response)
  }

  #fail(message: string, out: string[]): void {
    this.#start(out)
    const output = this.#items.map((item) => this.#snapshot(item, this.#closed.has(item) ? 'completed' : 'incomplete'))
    const response = failedResponse(this.#draft, message, { output, model: this.#model, usage: this.#usage })
    this.#emit(out, 'response.failed', { response })
    this.#end(response)
  }

  #end(response: JsonObject): void {
    this.#finished = true
    this.#pending = Buffer.alloc(0)
    this.#onFinal(response)
  }
}
