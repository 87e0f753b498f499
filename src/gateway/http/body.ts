import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { nodeRequest, requestHeader } from './node-request.ts'
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
  // Under @hono/node-server the Node request is at hand: reading it directly skips a web-stream adapter per request.
  const incoming = nodeRequest(c)
  const early = incoming && earlyReads.get(incoming)
  const bytes = early
    ? await early
    : incoming && !incoming.readableDidRead
      ? await readNodeLimited(incoming, options.limit)
      : await readLimited(c.req.raw.body, options.limit)
  return { bytes, json: parseJsonObject(bytes) }
}

/** Early reads by request. Beside the request rather than on it: a property added to Node's request objects would
 * change their shape, and V8 would drop the optimized code of Node's HTTP server that expects the usual one. */
const earlyReads = new WeakMap<IncomingMessage, Promise<Uint8Array>>()

/** The largest body read early: a chat request is a few KB; larger ones are read when their route asks. */
const EARLY_LIMIT = 1024 * 1024

/**
 * Starts reading a small JSON request body the moment its headers are parsed (call it from the server's request
 * listener, before the app). Node's parser then hands the body over in the same turn as the headers, usually from the
 * same packet, instead of buffering it until the route, behind the middleware, asks and waits further turns for it
 * (about 0.05-0.1 ms of a request run cold). Only `application/json` bodies of a declared length up to 1 MiB: an
 * upload streams as before, and a route limit below the declared length still refuses the body (413) unread.
 */
export function readJsonBodyEarly(incoming: IncomingMessage): void {
  if (incoming.method !== 'POST') return
  const length = Number(incoming.headers['content-length'])
  if (!(length > 0 && length <= EARLY_LIMIT)) return
  if (!incoming.headers['content-type']?.toLowerCase().startsWith('application/json')) return
  const read = readNodeLimited(incoming, EARLY_LIMIT, length)
  // A request refused before its route reads the body (401, 404) never awaits this: its failure is nobody's.
  read.catch(() => {})
  earlyReads.set(incoming, read)
}

/**
 * Reads a Node request body up to `limit` bytes. With the declared length (`expected`), the body is complete with its
 * last byte: it is handed over then, not a tick later with the stream's 'end' (Node's parser never delivers more than
 * the declared length, nor fewer without an error).
 */
function readNodeLimited(incoming: IncomingMessage, limit: number, expected?: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        // Stop reading instead of buffering the rest of it only to throw it away.
        incoming.pause()
        reject(payloadTooLarge(limit))
        return
      }
      chunks.push(chunk)
      if (size === expected) onEnd()
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const cleanup = () => {
      incoming.off('data', onData)
      incoming.off('end', onEnd)
      incoming.off('error', onError)
    }
    incoming.on('data', onData)
    incoming.on('end', onEnd)
    incoming.on('error', onError)
  })
}

async function readLimited(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array()
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      // Cancelling stops the upload instead of buffering the rest of it only to throw it away.
      await reader.cancel().catch(() => {})
      throw payloadTooLarge(limit)
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0]!
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
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
