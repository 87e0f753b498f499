/**
 * What an upstream's error body says, whatever its shape, in OpenAI's words: the gateway reads provider errors and
 * the provider node reads backend errors through this one reader. Bodies come from strangers: only their text is
 * taken (capped), never their structure beyond these fields.
 */
export type UpstreamErrorBody = { message: string; param: string | null; code: string | null }

const MAX_MESSAGE = 2_000

/**
 * Reads OpenAI's `{error:{message,type,param,code}}` (vLLM's too, whose `code` is the status as a number), 0G
 * brokers' `{"error":"…"}`, FastAPI's `{detail}` (a string, or pydantic's list of issues) and `{message}`; any other
 * text is the message itself. Schema-library wording ("Too big: expected number to be <=20", pydantic's
 * "Input should be …") is rewritten as OpenAI words it, with `param` set where the body names the field.
 */
export function readUpstreamError(text: string): UpstreamErrorBody {
  let message: string | undefined
  let param: string | null = null
  let code: string | null = null
  try {
    const body = JSON.parse(text) as Record<string, unknown>
    const err = body.error
    if (typeof err === 'string') message = err
    else if (err && typeof err === 'object') {
      const e = err as Record<string, unknown>
      if (typeof e.message === 'string') message = e.message
      if (typeof e.param === 'string' && e.param) param = e.param
      if (typeof e.code === 'string' && e.code) code = e.code
    } else if (typeof body.detail === 'string') message = body.detail
    else if (Array.isArray(body.detail)) return pydanticIssue(body.detail[0]) ?? fallback(JSON.stringify(body.detail))
    else if (typeof body.message === 'string') message = body.message
  } catch {
    // not JSON: the text itself is the message
  }
  if (message === undefined) return fallback(text)
  return reword(message.slice(0, MAX_MESSAGE), param, code)
}

function fallback(text: string): UpstreamErrorBody {
  return { message: text.trim().slice(0, MAX_MESSAGE) || 'no error body', param: null, code: null }
}

/** `messages.0.role` (zod, pydantic) as OpenAI writes it: `messages[0].role`. */
export function openAiParam(path: ReadonlyArray<string | number>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number' || /^\d+$/.test(part)) out += `[${part}]`
    else out += out ? `.${part}` : part
  }
  return out
}

const dotted = (path: string) => openAiParam(path.split('.'))

/** A pydantic issue ({loc, msg}), FastAPI's 422 detail item. */
function pydanticIssue(issue: unknown): UpstreamErrorBody | undefined {
  if (!issue || typeof issue !== 'object') return undefined
  const { loc, msg } = issue as { loc?: unknown; msg?: unknown }
  if (!Array.isArray(loc) || typeof msg !== 'string') return undefined
  const path = loc.filter((p): p is string | number => typeof p === 'string' || typeof p === 'number')
  const param = openAiParam(path[0] === 'body' ? path.slice(1) : path) || null
  return reword(msg, param, null)
}

// vLLM reports pydantic issues inside its message as a Python repr: [{'type': …, 'loc': ('body', 'x'), 'msg': '…'}]
const PYDANTIC_REPR = /'loc':\s*\(([^)]*)\),\s*'msg':\s*(?:'([^']*)'|"([^"]*)")/
const ZOD_PREFIX = /^([A-Za-z_][\w.]*):\s+(.*)$/s
const BOUND = /^Too (big|small): expected \w+ to (?:be|have) ([<>]=?)\s*(-?[\d.]+)(?:\s*(\w+))?/
const OPTION = /^Invalid option: expected one of (.+)$/
const TYPE = /^Invalid input: expected (\w+), received (\w+)/
const PYDANTIC_BOUND = /^Input should be (less|greater) than( or equal to)? (-?[\d.]+)/
const SCHEMA_WORDING = [BOUND, OPTION, TYPE, PYDANTIC_BOUND]

function reword(message: string, param: string | null, code: string | null): UpstreamErrorBody {
  const repr = PYDANTIC_REPR.exec(message)
  if (repr) {
    const path = repr[1]!.split(',').map((p) => p.trim().replace(/^['"]|['"]$/g, ''))
    const issueParam = openAiParam((path[0] === 'body' ? path.slice(1) : path).filter(Boolean)) || param
    return reword(repr[2] ?? repr[3] ?? message, issueParam, code)
  }
  // "field: …" is taken as naming the field only when the body's param says so or the rest is schema wording: a
  // message such as "Error: overloaded" keeps its colon.
  const prefixed = ZOD_PREFIX.exec(message)
  let text = message
  if (prefixed) {
    const named = param !== null && (dotted(prefixed[1]!) === param || prefixed[1] === param)
    if (named || SCHEMA_WORDING.some((re) => re.test(prefixed[2]!))) {
      param = dotted(prefixed[1]!)
      text = prefixed[2]!
    }
  }
  const field = param ? `'${param}'` : 'request'
  const bound = BOUND.exec(text)
  if (bound) {
    const [, , op, limit, unit] = bound
    // Worded as the gateway's own validation words it (validate.ts): "expected a value <= 20".
    const expected = unit && unit !== 'number' ? `${op} ${limit} ${unit}` : `a value ${op} ${limit}`
    return { message: `Invalid ${field}: expected ${expected}.`, param, code }
  }
  const option = OPTION.exec(text)
  if (option) {
    const values = option[1]!
      .split('|')
      .map((v) => `'${v.trim().replace(/^"|"$/g, '')}'`)
      .join(', ')
    return { message: `Invalid value for ${field}. Supported values are: ${values}.`, param, code }
  }
  const type = TYPE.exec(text)
  if (type) {
    return { message: `Invalid type for ${field}: expected ${type[1]}, but got ${type[2]} instead.`, param, code }
  }
  const pyBound = PYDANTIC_BOUND.exec(text)
  if (pyBound) {
    const op = `${pyBound[1] === 'less' ? '<' : '>'}${pyBound[2] ? '=' : ''}`
    return { message: `Invalid ${field}: expected a value ${op} ${pyBound[3]}.`, param, code }
  }
  if (text !== message) return { message: `Invalid ${field}: ${text}`, param, code }
  return { message, param, code }
}
