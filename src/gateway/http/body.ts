import type { Context } from 'hono'
import { BodyTooLargeError, readBody } from '../../http/early-body.ts'
import { requestHeader } from '../../http/node-request.ts'
import { badRequest, payloadTooLarge } from './openai-error.ts'

export type ReadJsonBodyOptions = {
  /** Largest body accepted, in bytes. */
  limit: number
}

export type JsonBody = {
  /** The body exactly as received: what is forwarded upstream and hashed for the provider's signature. */
  bytes: Uint8Array
  json: Record<string, unknown>
}

/**
 * Reads a JSON object body with a size limit. A declared content-length over the limit is refused before a byte
 * is read (a 60 MB upload gets its 413 at once, acceptance case 11); a chunked body is cut off as soon as it
 * passes the limit. The content-type is not checked: `curl -d` sends form-urlencoded for JSON bodies.
 */
export async function readJsonBody(c: Context, options: ReadJsonBodyOptions): Promise<JsonBody> {
  const declared = requestHeader(c, 'content-length')
  if (declared !== undefined && Number(declared) > options.limit) throw payloadTooLarge(options.limit)
  let bytes: Uint8Array
  try {
    bytes = await readBody(c, options.limit)
  } catch (err) {
    throw err instanceof BodyTooLargeError ? payloadTooLarge(err.limit) : err
  }
  return { bytes, json: parseJsonObject(bytes) }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.byteLength === 0) throw invalidJson('the body is empty')
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(bytes))
  } catch (err) {
    throw invalidJson(err instanceof TypeError ? 'the body is not valid UTF-8' : (err as Error).message)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest(
      `The request body must be a JSON object, but got ${describeJson(value)}.`,
      null,
      'invalid_request_body',
    )
  }
  return value as Record<string, unknown>
}

function invalidJson(detail: string): Error {
  return badRequest(
    `We could not parse the JSON body of your request (${detail}). Send a JSON object with ` +
      '`Content-Type: application/json`.',
    null,
    'invalid_json',
  )
}

function describeJson(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `a ${typeof value}`
}
