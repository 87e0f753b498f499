import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Busboy } from '@fastify/busboy'
import { FineTuningError } from './ft-error.ts'

/** A dataset upload as it arrived: its file on disk (the caller moves or removes it) and its text fields. */
export type ReceivedUpload = { file: string; size: number; fields: ReadonlyMap<string, string> }

/** A dataset larger than the node takes. */
export function datasetTooLarge(limit: number): FineTuningError {
  return new FineTuningError(413, 'dataset_too_large', `the dataset is larger than this node's limit of ${limit} bytes`)
}

/**
 * Reads 0G's dataset upload (multipart/form-data: `file`, then `signature` and `timestamp`; SDK
 * provider.js uploadDatasetToTEE) into a file under `tmpDir`, at most `limit` bytes: past it a 413 and nothing
 * kept. The signature comes after the file, so it is checked once the file is in; the caller removes the file when it
 * refuses the upload.
 */
export async function receiveDatasetUpload(
  body: ReadableStream<Uint8Array> | null,
  options: { contentType: string | undefined; limit: number; tmpDir: string },
): Promise<ReceivedUpload> {
  const contentType = options.contentType ?? ''
  if (!/^multipart\/form-data\s*;/i.test(contentType) || !body)
    throw new FineTuningError(400, 'invalid_upload', 'the dataset upload is multipart/form-data with a file part')
  await mkdir(options.tmpDir, { recursive: true })
  const file = join(options.tmpDir, `${randomUUID()}.upload`)
  const fields = new Map<string, string>()
  let size = 0
  let sawFile = false
  let refusal: FineTuningError | undefined
  const refuse = (e: FineTuningError) => {
    refusal ??= e
  }
  let parser: ReturnType<typeof Busboy>
  try {
    parser = Busboy({
      headers: { 'content-type': contentType },
      limits: { fileSize: options.limit, files: 1, fields: 16, fieldSize: 4096, parts: 17, headerPairs: 16 },
    })
  } catch (err) {
    throw new FineTuningError(400, 'invalid_upload', `the multipart body is malformed: ${(err as Error).message}`)
  }
  // Past the limit, reading stops: the rest of an oversized upload is not read only to be thrown away.
  const stop = new AbortController()
  const written: Promise<void>[] = []
  parser.on('field', (name, value, _nameTruncated, valueTruncated) => {
    if (valueTruncated) refuse(new FineTuningError(400, 'invalid_upload', `the form field ${name} is too large`))
    else if (!fields.has(name)) fields.set(name, value)
  })
  parser.on('file', (name, stream) => {
    if (name !== 'file' || sawFile) {
      stream.resume()
      return
    }
    sawFile = true
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length
    })
    stream.on('limit', () => {
      refuse(datasetTooLarge(options.limit))
      stop.abort()
    })
    written.push(pipeline(stream, createWriteStream(file)))
  })
  parser.on('filesLimit', () => refuse(new FineTuningError(400, 'invalid_upload', 'the form carries one file only')))
  parser.on('partsLimit', () => refuse(new FineTuningError(400, 'invalid_upload', 'the form has too many parts')))
  try {
    await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>), parser, {
      signal: stop.signal,
    })
    await Promise.all(written)
  } catch (err) {
    await rm(file, { force: true })
    if (refusal) throw refusal
    throw new FineTuningError(400, 'invalid_upload', `the multipart body is malformed: ${(err as Error).message}`)
  }
  if (refusal || !sawFile) {
    await rm(file, { force: true })
    throw refusal ?? new FineTuningError(400, 'missing_file', 'the upload has no `file` part')
  }
  return { file, size, fields }
}
