import { once } from 'node:events'
import { Busboy, type BusboyInstance } from '@fastify/busboy'
import { BackendError } from './errors.ts'

export type PartInfo = { name: string; filename: string | undefined; contentType: string | undefined }

/** What to do with one part's bytes, chunk by chunk, as they arrive. */
export type PartSink = { write(chunk: Buffer): void; end(): void }

/** A part's headers are small; anything bigger is a client error, not a reason to buffer. */
const MAX_HEADER_BYTES = 16 * 1024
/** More parts than any OpenAI form has (an edit takes 16 images and a handful of fields). */
const MAX_PARTS = 64

/**
 * Streams a multipart/form-data body through a real parser (busboy), handing each part's bytes to the sink `open`
 * returns as they arrive: an upload is never held in memory whole. Every part is streamed, field or file alike, so a
 * file sent without a filename (curl `-F file=<a.wav`) is still a file. A sink may throw (a BackendError) to refuse
 * the upload; a malformed body is a 400.
 */
export async function readMultipart(
  body: ReadableStream<Uint8Array>,
  contentType: string | undefined,
  open: (info: PartInfo) => PartSink,
): Promise<void> {
  let parser: BusboyInstance
  try {
    parser = Busboy({
      headers: { 'content-type': contentType ?? '' },
      isPartAFile: () => true,
      limits: { headerSize: MAX_HEADER_BYTES, parts: MAX_PARTS },
    })
  } catch {
    throw new BackendError(400, 'Expected a multipart/form-data body with a boundary')
  }
  let failure: unknown
  const fail = (err: unknown) => {
    failure ??= err
  }
  let openParts = 0
  let partsDone: () => void = () => {}
  const settled = () => {
    if (openParts === 0) partsDone()
  }
  parser.on('file', (name, stream, filename, _encoding, mimeType) => {
    // Every stream is drained, even after a failure: busboy only finishes once each part has been read.
    let sink: PartSink | undefined
    try {
      if (failure === undefined) sink = open({ name, filename: filename || undefined, contentType: mimeType })
    } catch (err) {
      fail(err)
    }
    openParts++
    stream.on('data', (chunk: Buffer) => {
      if (failure !== undefined || !sink) return
      try {
        sink.write(chunk)
      } catch (err) {
        fail(err)
      }
    })
    stream.on('end', () => {
      if (failure === undefined && sink) {
        try {
          sink.end()
        } catch (err) {
          fail(err)
        }
      }
      openParts--
      settled()
    })
  })
  parser.on('partsLimit', () => fail(new BackendError(400, `The form has more than ${MAX_PARTS} parts`)))
  const finished = new Promise<void>((resolve, reject) => {
    parser.on('finish', () => {
      partsDone = resolve
      settled()
    })
    parser.on('error', (err) => reject(malformed(err as Error)))
  })
  // A rejection before the body has been fed must not go unhandled.
  finished.catch(() => {})

  const reader = body.getReader()
  try {
    for (;;) {
      if (failure !== undefined) break
      const { done, value } = await reader.read()
      if (done) break
      if (!parser.write(value)) await Promise.race([once(parser, 'drain'), finished])
    }
    if (failure === undefined) {
      parser.end()
      await finished
    }
  } catch (err) {
    fail(err)
  } finally {
    if (failure !== undefined) {
      await reader.cancel().catch(() => {})
      parser.destroy()
    }
  }
  if (failure !== undefined) throw failure
}

function malformed(err: Error): BackendError {
  if (/unexpected end/i.test(err.message)) {
    return new BackendError(400, 'The multipart body ended before its closing boundary')
  }
  return new BackendError(400, `The multipart body is malformed: ${err.message}`)
}

/** A form read whole: its text fields (every value of each name) and its files, by field name. */
export type Form = {
  fields: Map<string, string[]>
  files: Map<string, Array<{ filename: string | undefined; contentType: string | undefined; bytes: Buffer }>>
}

/**
 * Reads a small multipart form into memory: the parts named in `fileFields` as files (at most `maxFileBytes` in
 * all), every other part as a text field of at most `maxFieldBytes`. For forms whose files are needed whole (images
 * to decode); an audio upload streams through {@link readMultipart} instead.
 */
export async function readForm(
  body: ReadableStream<Uint8Array>,
  contentType: string | undefined,
  limits: { fileFields: readonly string[]; maxFileBytes: number; maxFieldBytes: number; fileParam: string },
): Promise<Form> {
  const form: Form = { fields: new Map(), files: new Map() }
  let fileBytes = 0
  await readMultipart(body, contentType, (part) => {
    const chunks: Buffer[] = []
    const isFile = limits.fileFields.includes(part.name)
    let size = 0
    return {
      write(chunk) {
        size += chunk.length
        if (isFile) {
          fileBytes += chunk.length
          if (fileBytes > limits.maxFileBytes) {
            throw new BackendError(
              413,
              `The uploaded files are larger than ${limits.maxFileBytes / 1024 / 1024} MiB in all.`,
              limits.fileParam,
            )
          }
        } else if (size > limits.maxFieldBytes) {
          throw new BackendError(400, `The form field ${part.name} is too long`, part.name)
        }
        chunks.push(chunk)
      },
      end() {
        const bytes = Buffer.concat(chunks)
        if (isFile) {
          const list = form.files.get(part.name) ?? []
          list.push({ filename: part.filename, contentType: part.contentType, bytes })
          form.files.set(part.name, list)
        } else {
          form.fields.set(part.name, [...(form.fields.get(part.name) ?? []), bytes.toString('utf8')])
        }
      },
    }
  })
  return form
}
