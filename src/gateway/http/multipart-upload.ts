import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { Busboy, type BusboyInstance } from '@fastify/busboy'
import { badRequest, type GatewayError, payloadTooLarge } from './openai-error.ts'

export type MultipartUploadOptions = {
  /** The request's Content-Type, with its boundary. */
  contentType: string
  /** Largest upload, in bytes: a 413 beyond it. */
  limit: number
  /** Names of the parts that are files whatever their headers say (curl `-F file=<a.wav` sends no filename). */
  fileFields: readonly string[]
  /** The file the form must carry, under any of `names`; `param` names it in the 400 when it is missing. */
  requiredFile: { names: readonly string[]; param: string }
  /** Bytes held in memory until the model and the file are known; past this they go to a temporary file. */
  memoryLimit?: number
  /** Largest text field, in bytes (values are untrusted and kept in memory). */
  fieldSizeLimit?: number
  /** Most parts (fields and files) in one form. */
  partsLimit?: number
  /** Text fields that may appear once only (`model` always): the gateway and the provider must read the same one. */
  uniqueFields?: readonly string[]
  /**
   * Called once the whole form has been read, just before its closing delimiter goes out: text fields to add to
   * the form there, or nothing. It may throw a GatewayError to refuse the upload (a field the client sent late).
   */
  beforeClose?: (fields: ReadonlyMap<string, string>) => Record<string, string> | undefined
}

export type MultipartUpload = {
  /** The form's `model` field. */
  model: string
  /**
   * The text fields read so far, the first value of each name: at least every field before the model and the
   * required file; every field of the form once `body()` has been read to its end.
   */
  fields: ReadonlyMap<string, string>
  /** Whether the bytes read before routing went to a temporary file (the upload was larger than memoryLimit). */
  spilled: boolean
  /** The form's boundary (from the Content-Type). */
  boundary: string
  /**
   * The upload, byte for byte (plus any beforeClose fields), ready to stream to the provider (call once). A
   * `rewrite` (a model alias's target put in the form) sees those bytes first: what it yields is what is sent and
   * hashed.
   */
  body: (rewrite?: (bytes: AsyncIterable<Buffer>) => AsyncIterable<Uint8Array>) => Readable
  /** sha256 hex of every byte `body()` streamed (complete once the provider has read it all). */
  sha256: () => string
  /** Removes any temporary file (call when the request is over). */
  dispose: () => Promise<void>
}

const MIB = 1024 * 1024

/** An upload body that is not what it says: a 400 that names the problem. */
function malformed(detail: string): GatewayError {
  return badRequest(`The multipart/form-data body is malformed: ${detail}.`, null, 'invalid_multipart_body')
}

/**
 * Reads a multipart/form-data upload as it arrives, far enough to know its `model` (which picks the provider) and
 * that its file is there, and hands back the whole upload, byte for byte, to stream on: the provider hashes the
 * exact bytes it gets, and the gateway's verifier what it sent. A real parser (busboy) reads the form, so text in a
 * file that looks like a field header is file content. Until the model and the file are known the bytes read are
 * held, in memory up to `memoryLimit` and then in a temporary file: clients send the file before the model as often
 * as after. When both come early, the rest of the upload streams straight through, still parsed on its way (late
 * fields, limits, a form cut short).
 *
 * Errors are OpenAI-shaped: 413 past `limit`, 400 for a malformed form, a missing model or file, or an oversized
 * field. Found before routing, they are thrown here; found in the streamed rest, the body stream fails with them.
 */
export async function readMultipartUpload(
  source: ReadableStream<Uint8Array>,
  options: MultipartUploadOptions,
): Promise<MultipartUpload> {
  const memoryLimit = options.memoryLimit ?? MIB
  const form = new FormReader(options)
  const reader = source.getReader()
  const head: Buffer[] = []
  let headSize = 0
  let total = 0
  let spill: { dir: string; file: string; stream: WriteStream } | undefined
  let done = false
  /** The next chunk of the upload, counted against the limit; undefined once the form has ended. */
  const nextChunk = async (): Promise<Buffer | undefined> => {
    const next = await reader.read()
    if (next.done) {
      done = true
      await form.end()
      return undefined
    }
    total += next.value.byteLength
    if (total > options.limit) throw payloadTooLarge(options.limit)
    return Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)
  }
  try {
    while (!(form.model !== undefined && form.fileStarted)) {
      const chunk = await nextChunk()
      if (!chunk) break
      if (!spill && headSize + chunk.length > memoryLimit) {
        const dir = await mkdtemp(join(tmpdir(), 'zg-upload-'))
        spill = { dir, file: join(dir, 'upload'), stream: createWriteStream(join(dir, 'upload')) }
        // A write that fails is known from the 'drain' wait or the final end(); no unhandled 'error' event.
        spill.stream.on('error', () => {})
        for (const held of head) spill.stream.write(held)
        head.length = 0
      }
      if (spill) {
        if (!spill.stream.write(chunk)) await once(spill.stream, 'drain')
      } else {
        head.push(chunk)
        headSize += chunk.length
      }
      await form.write(chunk)
      form.check()
    }
    form.check()
    if (!form.model) throw badRequest('you must provide a model parameter', 'model', 'missing_required_parameter')
    if (!form.fileStarted) {
      throw badRequest(
        `you must provide a ${options.requiredFile.param} file part`,
        options.requiredFile.param,
        'missing_required_parameter',
      )
    }
    if (spill) {
      const stream = spill.stream
      await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())))
    }
  } catch (err) {
    // No cancel: that would destroy the request, and the socket with it, before the client has its answer; the
    // server drains what the client still sends.
    reader.releaseLock()
    spill?.stream.destroy()
    if (spill) await rm(spill.dir, { recursive: true, force: true })
    throw err
  }

  const spilled = spill
  const hash = createHash('sha256')
  const close = options.beforeClose ? new BeforeClose(form.boundary) : undefined
  async function* upload(): AsyncGenerator<Buffer> {
    const out = function* (bytes: Buffer) {
      const passed = close ? close.push(bytes) : bytes
      if (passed.length) yield passed
    }
    try {
      const replayed: AsyncIterable<Buffer> | Iterable<Buffer> = spilled ? createReadStream(spilled.file) : head
      for await (const chunk of replayed) yield* out(chunk)
      head.length = 0
      while (!done) {
        const chunk = await nextChunk()
        if (!chunk) break
        await form.write(chunk)
        form.check()
        yield* out(chunk)
      }
      form.check()
      if (close) {
        const added = options.beforeClose?.(form.fields)
        yield close.end(added ? partsOf(form.boundary, added) : undefined)
      }
    } catch (err) {
      reader.releaseLock()
      throw err
    }
  }
  async function* hashed(bytes: AsyncIterable<Uint8Array>) {
    for await (const chunk of bytes) {
      hash.update(chunk)
      yield chunk
    }
  }
  let digest: string | undefined
  return {
    model: form.model,
    fields: form.fields,
    boundary: form.boundary,
    spilled: spilled !== undefined,
    body: (rewrite) => Readable.from(hashed(rewrite ? rewrite(upload()) : upload()), { objectMode: false }),
    sha256: () => {
      digest ??= hash.digest('hex')
      return digest
    },
    dispose: async () => {
      if (spilled) await rm(spilled.dir, { recursive: true, force: true })
    },
  }
}

/** The busboy parser, fed chunk by chunk, and what it found so far. */
class FormReader {
  readonly boundary: string
  readonly fields = new Map<string, string>()
  model: string | undefined
  fileStarted = false
  #error: GatewayError | undefined
  #finished = false
  readonly #parser: BusboyInstance
  readonly #settled: Promise<void>

  constructor(options: MultipartUploadOptions) {
    const files = new Set(options.fileFields)
    const required = new Set(options.requiredFile.names)
    const unique = new Set(['model', ...(options.uniqueFields ?? [])])
    const fieldSize = options.fieldSizeLimit ?? 64 * 1024
    const parts = options.partsLimit ?? 100
    const boundary = boundaryOf(options.contentType)
    if (!boundary) {
      throw badRequest('the Content-Type multipart/form-data has no boundary parameter', null, 'invalid_multipart_body')
    }
    this.boundary = boundary
    try {
      this.#parser = Busboy({
        headers: { 'content-type': options.contentType },
        // Parsing runs in step with the upload; a larger write buffer saves a drain wait per network chunk.
        highWaterMark: MIB,
        isPartAFile: (name, _type, filename) => filename !== undefined || (name !== undefined && files.has(name)),
        limits: { fieldSize, parts, headerPairs: 64, headerSize: 16 * 1024 },
      })
    } catch (err) {
      throw malformed((err as Error).message)
    }
    const fail = (error: GatewayError) => {
      this.#error ??= error
    }
    this.#parser.on('field', (name, value, _nameTruncated, valueTruncated) => {
      // A part without a name is the provider's to refuse; nothing here can be done with it.
      if (typeof name !== 'string') return
      if (valueTruncated) {
        fail(badRequest(`the form field \`${name}\` is larger than ${fieldSize} bytes`, name, 'field_too_large'))
        return
      }
      if (this.fields.has(name)) {
        if (unique.has(name)) fail(badRequest(`the form has more than one \`${name}\` field`, name, 'duplicate_field'))
        return
      }
      this.fields.set(name, value)
      if (name === 'model') this.model = value
    })
    this.#parser.on('file', (name, stream) => {
      if (required.has(name)) this.fileStarted = true
      // The bytes go to the provider from the raw upload: the parsed copy is only read past.
      stream.on('data', () => {})
      stream.on('error', () => {})
    })
    this.#parser.on('partsLimit', () =>
      fail(badRequest(`the form has more than ${parts} parts`, null, 'too_many_parts')),
    )
    this.#settled = new Promise<void>((resolve) => {
      this.#parser.on('error', (err) => {
        fail(malformed(err instanceof Error ? err.message : String(err)))
        resolve()
      })
      this.#parser.on('finish', () => {
        this.#finished = true
        resolve()
      })
    })
  }

  /** Parses a chunk; resolves when the parser takes more (or has failed). */
  async write(chunk: Buffer): Promise<void> {
    if (this.#error) return
    if (this.#parser.write(chunk)) return
    const parser = this.#parser
    await new Promise<void>((resolve) => {
      const done = () => {
        parser.off('drain', done)
        parser.off('error', done)
        resolve()
      }
      parser.on('drain', done)
      parser.on('error', done)
    })
  }

  /** The upload ended: resolves once the parser has emitted everything (or failed). */
  async end(): Promise<void> {
    if (this.#error) return
    this.#parser.end()
    await this.#settled
    // An 'error' may come with 'finish' after it; nothing is lost by reading the state now.
    if (!this.#error && !this.#finished) this.#error = malformed('the form ended early')
  }

  /** Throws the first problem found. */
  check(): void {
    if (this.#error) throw this.#error
  }
}

/** The boundary parameter of a multipart Content-Type, unquoted. */
export function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))/i.exec(contentType)
  const value = match?.[1]?.replace(/\\(.)/g, '$1') ?? match?.[2]
  return value || undefined
}

/** Text parts to add to a form: each with the delimiter before it, to go right before the closing delimiter. */
function partsOf(boundary: string, fields: Record<string, string>): Buffer {
  return Buffer.concat(
    Object.entries(fields).map(([name, value]) =>
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}`),
    ),
  )
}

/** An epilogue after the closing delimiter is allowed but meaningless; holding an unbounded one is not. */
const MAX_EPILOGUE = 64 * 1024

/**
 * Passes a form's bytes on, holding back everything from its closing delimiter (`CRLF--boundary--`) on, so that
 * parts can be added before it once the whole form is known. The delimiter cannot occur in a part's content
 * (RFC 2046 §5.1.1), so its first occurrence is the close; only the few bytes that could begin it are held back
 * across chunks.
 */
export class BeforeClose {
  readonly #delimiter: Buffer
  #held: Buffer = Buffer.alloc(0)
  #found = false

  constructor(boundary: string) {
    this.#delimiter = Buffer.from(`\r\n--${boundary}--`)
  }

  /** The bytes that can go on now. */
  push(chunk: Buffer): Buffer {
    const bytes = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk
    if (this.#found) {
      if (bytes.length > MAX_EPILOGUE) throw malformed('too much data after the closing boundary')
      this.#held = bytes
      return Buffer.alloc(0)
    }
    const at = bytes.indexOf(this.#delimiter)
    if (at >= 0) {
      this.#found = true
      this.#held = bytes.subarray(at)
      return bytes.subarray(0, at)
    }
    const keep = Math.min(this.#delimiter.length - 1, bytes.length)
    this.#held = bytes.subarray(bytes.length - keep)
    return bytes.subarray(0, bytes.length - keep)
  }

  /** What remains, with `inserted` before the closing delimiter. */
  end(inserted: Buffer | undefined): Buffer {
    if (!this.#found) throw malformed('the closing boundary is missing')
    return inserted ? Buffer.concat([inserted, this.#held]) : this.#held
  }
}
