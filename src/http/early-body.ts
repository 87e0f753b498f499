import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { nodeRequest } from './node-request.ts'

/** A request body passed the limit it was read with: answer 413. */
export class BodyTooLargeError extends Error {
  readonly limit: number

  constructor(limit: number) {
    super(`the request body is larger than ${limit} bytes`)
    this.limit = limit
    this.name = 'BodyTooLargeError'
  }
}

/** Early reads by request. Beside the request rather than on it: a property added to Node's request objects would
 * change their shape, and V8 would drop the optimized code of Node's HTTP server that expects the usual one. */
const earlyReads = new WeakMap<IncomingMessage, Promise<Buffer>>()

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
  const read = readNodeBody(incoming, EARLY_LIMIT, length)
  // A request refused before its route reads the body (401, 404) never awaits this: its failure is nobody's.
  read.catch(() => {})
  earlyReads.set(incoming, read)
}

/**
 * A request's body, up to `limit` bytes, else a {@link BodyTooLargeError} for the app to word. Under
 * @hono/node-server it is read from the Node request (the early read when there was one), which skips a web-stream
 * adapter per request; called through fetch(), or once the body was taken as a web stream, from the web request.
 * Callers refuse a declared length over the limit first: an early read, bounded by that length, then stays within it.
 */
export async function readBody(c: Context, limit: number): Promise<Buffer> {
  const incoming = nodeRequest(c)
  const early = incoming && earlyReads.get(incoming)
  if (early) return early
  if (incoming && !incoming.readableDidRead) return readNodeBody(incoming, limit)
  return readWebBody(c.req.raw.body, limit)
}

async function readWebBody(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer> {
  if (!body) return Buffer.alloc(0)
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
      throw new BodyTooLargeError(limit)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks, size)
}

/**
 * Reads a Node request body up to `limit` bytes. With the declared length (`expected`), the body is complete with its
 * last byte: it is handed over then, not a tick later with the stream's 'end' (Node's parser never delivers more than
 * the declared length, nor fewer without an error).
 */
function readNodeBody(incoming: IncomingMessage, limit: number, expected?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        // Stop reading instead of buffering the rest of it only to throw it away.
        incoming.pause()
        reject(new BodyTooLargeError(limit))
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
