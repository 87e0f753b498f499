import { BackendError } from './errors.ts'

export type PartInfo = { name: string; filename: string | undefined; contentType: string | undefined }

/** What to do with one part's bytes, chunk by chunk, as they arrive. */
export type PartSink = { write(chunk: Buffer): void; end(): void }

/** Fields that are not files are small; anything bigger is a client error, not a reason to buffer. */
const MAX_HEADER_BYTES = 16 * 1024

export function boundaryOf(contentType: string | undefined): string {
  const match = /^multipart\/form-data\s*;.*?\bboundary=(?:"([^"]+)"|([^\s;]+))/i.exec(contentType ?? '')
  const boundary = match?.[1] ?? match?.[2]
  if (!boundary) throw new BackendError(400, 'Expected a multipart/form-data body with a boundary')
  return boundary
}

function partInfo(headerBlock: string): PartInfo {
  let disposition = ''
  let contentType: string | undefined
  for (const line of headerBlock.split('\r\n')) {
    const colon = line.indexOf(':')
    const key = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    if (key === 'content-disposition') disposition = value
    if (key === 'content-type') contentType = value
  }
  const param = (key: string) => new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"`, 'i').exec(disposition)?.[1]
  const name = param('name')
  if (name === undefined) throw new BackendError(400, 'A multipart part has no name')
  return { name, filename: param('filename'), contentType }
}

/**
 * Streams a multipart/form-data body, handing each part's bytes to the sink `open` returns as they arrive: an upload
 * is never held in memory whole. Only a delimiter's length of bytes is kept back between chunks.
 */
export async function readMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  open: (info: PartInfo) => PartSink,
): Promise<void> {
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  // The first delimiter has no CRLF before it; prepending one lets a single search handle every delimiter.
  let buffer: Buffer = Buffer.from('\r\n')
  let state = 'preamble' as 'preamble' | 'headers' | 'body' | 'done'
  let sink: PartSink | undefined

  /** Consumes what it can of the buffer; true when it changed state and should run again. */
  const advance = (): boolean => {
    if (state === 'headers') {
      const end = buffer.indexOf('\r\n\r\n')
      if (end < 0) {
        if (buffer.length > MAX_HEADER_BYTES) throw new BackendError(400, 'A multipart part has oversized headers')
        return false
      }
      sink = open(partInfo(buffer.toString('utf8', 0, end)))
      buffer = buffer.subarray(end + 4)
      state = 'body'
      return true
    }
    const at = buffer.indexOf(delimiter)
    if (at < 0) {
      // Keep back what could be the start of a delimiter; the rest is the part's data (or preamble, dropped).
      const keep = Math.max(0, buffer.length - delimiter.length + 1)
      if (state === 'body' && keep > 0) sink!.write(buffer.subarray(0, keep))
      buffer = buffer.subarray(keep)
      return false
    }
    if (state === 'body') {
      if (at > 0) sink!.write(buffer.subarray(0, at))
      sink!.end()
      state = 'preamble'
    }
    buffer = buffer.subarray(at)
    // After a delimiter: "--" ends the body, CRLF starts the next part's headers.
    if (buffer.length < delimiter.length + 2) return false
    const after = buffer.toString('latin1', delimiter.length, delimiter.length + 2)
    buffer = buffer.subarray(delimiter.length + 2)
    state = after === '--' ? 'done' : 'headers'
    return state === 'headers'
  }

  for await (const chunk of body) {
    buffer = Buffer.concat([buffer, chunk])
    while (advance()) {}
    if (state === 'done') break
  }
  if (state !== 'done') throw new BackendError(400, 'The multipart body ended before its closing boundary')
}
