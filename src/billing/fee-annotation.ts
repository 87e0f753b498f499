import { format0G } from '../chain/units.ts'
import { type Usage, usageFromBody, usageOfResponse } from './pricing.ts'

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN = 0x7b
const CLOSE = 0x7d
const USAGE_KEY = Buffer.from('"usage"')

/**
 * Where the `usage` object of a JSON body is: the last `"usage"` key followed by an object (OpenAI puts it last,
 * after the content), from its `{` to its `}` inclusive. A `"usage"` inside a string cannot match: its quotes would
 * be escaped.
 */
export function usageObjectSpan(body: Uint8Array): { start: number; end: number } | undefined {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  for (let key = buf.lastIndexOf(USAGE_KEY); key !== -1; key = key > 0 ? buf.lastIndexOf(USAGE_KEY, key - 1) : -1) {
    let i = key + USAGE_KEY.length
    while (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09) i++
    if (buf[i] !== 0x3a) continue
    i++
    while (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09) i++
    if (buf[i] !== OPEN) continue
    const start = i
    let depth = 0
    let inString = false
    for (; i < buf.length; i++) {
      const c = buf[i]
      if (inString) {
        if (c === BACKSLASH) i++
        else if (c === QUOTE) inString = false
      } else if (c === QUOTE) inString = true
      else if (c === OPEN) depth++
      else if (c === CLOSE && --depth === 0) return { start, end: i }
    }
    return undefined
  }
  return undefined
}

/** Endpoints whose whole usage is in their `usage` object (tokens), so parsing that object alone is enough. */
const TOKEN_ENDPOINTS = new Set(['chat/completions', 'completions', 'embeddings'])

/**
 * The usage of a whole (non-streamed) answer, parsing as little as it can: for token endpoints only the `usage`
 * object, not the whole body (a long completion is mostly content); the other endpoints as usageOfResponse does.
 */
export function usageOfAnswer(endpoint: string, contentType: string, body: Uint8Array): Usage | undefined {
  if (!TOKEN_ENDPOINTS.has(endpoint) || !contentType.includes('json'))
    return usageOfResponse(endpoint, contentType, body)
  const span = usageObjectSpan(body)
  if (!span) return undefined
  try {
    const text = Buffer.from(body.buffer, body.byteOffset + span.start, span.end - span.start + 1).toString('utf8')
    return usageFromBody(endpoint, { usage: JSON.parse(text) })
  } catch {
    return undefined
  }
}

/**
 * The body with `"cost":<fee in 0G>` added as the first member of its `usage` object (where OpenRouter-style clients
 * read it), the rest of the bytes as they were; the body unchanged when it has no usage object.
 */
export function withUsageCost(body: Uint8Array, fee: bigint): Uint8Array {
  const span = usageObjectSpan(body)
  if (!span) return body
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  let next = span.start + 1
  while (buf[next] === 0x20 || buf[next] === 0x0a || buf[next] === 0x0d || buf[next] === 0x09) next++
  // format0G works on the bigint's digits: the number written into the JSON never went through a float here.
  const member = `"cost":${format0G(fee)}${buf[next] === CLOSE ? '' : ','}`
  return Buffer.concat([buf.subarray(0, span.start + 1), Buffer.from(member), buf.subarray(span.start + 1)])
}
