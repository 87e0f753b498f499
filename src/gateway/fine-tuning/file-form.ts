import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Busboy } from '@fastify/busboy'
import { boundaryOf } from '../http/multipart-upload.ts'
import { badRequest, payloadTooLarge } from '../http/openai-error.ts'

export type FileForm = { purpose: string | undefined; filename: string; bytes: number }

/**
 * Reads `POST /v1/files`' form (`purpose`, `file`) and writes the file's bytes to `path`, refusing more than `limit`
 * bytes with a 413 (nothing is kept then). One file part; text fields are small.
 */
export async function readFileForm(
  body: ReadableStream<Uint8Array>,
  contentType: string,
  path: string,
  limit: number,
): Promise<FileForm> {
  if (!contentType.toLowerCase().startsWith('multipart/form-data') || !boundaryOf(contentType))
    throw badRequest('Upload a file as multipart/form-data with `file` and `purpose`.', null, 'invalid_content_type')
  const fields = new Map<string, string>()
  let file: { filename: string; written: Promise<number> } | undefined
  let tooLarge = false
  const parser = Busboy({
    headers: { 'content-type': contentType },
    limits: { files: 1, fileSize: limit, fieldSize: 64 * 1024, parts: 20 },
  })
  parser.on('field', (name, value) => {
    if (typeof name === 'string' && !fields.has(name)) fields.set(name, value)
  })
  parser.on('file', (name, stream, filename) => {
    if (name !== 'file' || file) {
      stream.resume()
      return
    }
    let bytes = 0
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    stream.on('limit', () => {
      tooLarge = true
    })
    file = {
      filename: filename || 'upload.jsonl',
      written: pipeline(stream, createWriteStream(path)).then(() => bytes),
    }
  })
  try {
    await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream), parser)
    const bytes = await file?.written
    if (tooLarge) throw payloadTooLarge(limit)
    if (!file || bytes === undefined)
      throw badRequest('You must provide a `file` part.', 'file', 'missing_required_parameter')
    return { purpose: fields.get('purpose'), filename: file.filename, bytes }
  } catch (err) {
    await rm(path, { force: true })
    if ((err as { status?: number }).status) throw err
    throw badRequest(
      `The multipart/form-data body is malformed: ${(err as Error).message}.`,
      null,
      'invalid_multipart_body',
    )
  }
}
