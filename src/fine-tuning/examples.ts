/**
 * What trainers read: a JSONL dataset in any of 0G's three formats (0g-doc PR #373), one record per line —
 *
 *   chat messages                {"messages": [{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}]}
 *   instruction / input / output {"instruction": "…", "input": "…", "output": "…"}   (input optional)
 *   plain text                   {"text": "…"}
 *
 * — turned into prompt/completion pairs: the completion is what the model learns to write, the prompt what it is
 * conditioned on. A chat record gives one pair per trained assistant message (weight not 0), its prompt the
 * conversation before it, one `role: content` line per message; an instruction record gives the instruction (and
 * the input after a blank line) as the prompt and the output as the completion; a text record is all completion.
 * Content parts are reduced to their text.
 */
export type TrainingExample = { prompt: string; completion: string }

/** The dataset cannot be read; `issues` say where (1-based lines). */
export class DatasetError extends Error {
  override name = 'DatasetError'
  readonly issues: { line: number; message: string }[]

  constructor(issues: { line: number; message: string }[]) {
    const shown = issues.slice(0, 5).map((i) => i.message)
    const rest = issues.length > shown.length ? ` (and ${issues.length - shown.length} more)` : ''
    super(`the dataset cannot be read: ${shown.join('; ')}${rest}`)
    this.issues = issues
  }
}

/** Reads every record; throws DatasetError listing every bad line. */
export function readTrainingExamples(text: string): TrainingExample[] {
  return readRecords(text).flatMap((r) => r.examples)
}

/**
 * Each record's text, every token once: a conversation's messages as `role: content` lines, an instruction record's
 * prompt and output, a text record's text. (A conversation's examples share their prompts; this does not repeat
 * them.) Throws DatasetError like readTrainingExamples.
 */
export function readTrainingTexts(text: string): string[] {
  return readRecords(text).map((r) => r.text)
}

type ReadRecord = { examples: TrainingExample[]; text: string }

function readRecords(text: string): ReadRecord[] {
  const records: ReadRecord[] = []
  const issues: { line: number; message: string }[] = []
  const lines = (text.startsWith('\uFEFF') ? text.slice(1) : text).split('\n')
  for (const [i, raw] of lines.entries()) {
    const line = i + 1
    const body = raw.trim()
    if (body === '') continue // blank lines (and the final newline) carry no record
    let record: unknown
    try {
      record = JSON.parse(body)
    } catch (e) {
      issues.push({ line, message: `line ${line} is not valid JSON (${(e as Error).message})` })
      continue
    }
    const read = recordOf(record)
    if (typeof read === 'string') issues.push({ line, message: `line ${line}: ${read}` })
    else records.push(read)
  }
  if (issues.length > 0) throw new DatasetError(issues)
  if (records.length === 0) throw new DatasetError([{ line: 0, message: 'the dataset has no examples' }])
  return records
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The record's examples and text, or what is wrong with it. */
function recordOf(record: unknown): ReadRecord | string {
  if (!isObject(record)) return 'a record must be a JSON object'
  if (Array.isArray(record.messages)) return chatRecord(record.messages)
  if (typeof record.instruction === 'string') {
    if (typeof record.output !== 'string') return 'an instruction record needs a string "output"'
    if (record.input !== undefined && typeof record.input !== 'string') return '"input" must be a string'
    const prompt = record.input ? `${record.instruction}\n\n${record.input}` : record.instruction
    return { examples: [{ prompt, completion: record.output }], text: `${prompt}\n${record.output}` }
  }
  if (typeof record.text === 'string') return { examples: [{ prompt: '', completion: record.text }], text: record.text }
  return 'a record needs "messages", "instruction" and "output", or "text"'
}

function chatRecord(messages: unknown[]): ReadRecord | string {
  const examples: TrainingExample[] = []
  const before: string[] = []
  for (const [i, message] of messages.entries()) {
    if (!isObject(message) || typeof message.role !== 'string') return `messages[${i}] needs a role`
    const content = textOf(message.content)
    if (content === undefined) return `messages[${i}].content must be text or text parts`
    if (message.role === 'assistant' && message.weight !== 0 && content !== '') {
      examples.push({ prompt: before.join('\n'), completion: content })
    }
    before.push(`${message.role}: ${content}`)
  }
  if (examples.length === 0) return 'the conversation has no assistant message to learn from'
  return { examples, text: before.join('\n') }
}

/** A message's text: a string, the text of its parts, or '' for an assistant's tool-call-only turn. */
function textOf(content: unknown): string | undefined {
  if (typeof content === 'string') return content
  if (content === undefined || content === null) return ''
  if (!Array.isArray(content)) return undefined
  return content
    .map((part) => (isObject(part) && typeof part.text === 'string' ? part.text : ''))
    .filter((t) => t !== '')
    .join('\n')
}
