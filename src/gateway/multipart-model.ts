import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { payloadTooLarge } from './http/openai-error.ts'

/** Bytes held in memory while looking for the model field; past this the upload spills to a temporary file. */
const MEMORY_LIMIT = 1024 * 1024

const MODEL_FIELD = /name="model"\r\n(?:[^\r\n]*\r\n)*\r\n([^\r\n]*)\r\n/

export type PeekedUpload = {
  /** The form's `model` field, or undefined if the upload has none. */
  model: string | undefined
  /** The whole upload, byte for byte, ready to stream to the provider (call once). */
  body: () => Readable
  /** sha256 hex of every byte streamed by `body()` (complete once the provider has read it all). */
  sha256: () => string
  /** Removes any temporary file (call when the request is over). */
  dispose: () => Promise<void>
}

/**
 * Reads a multipart upload just far enough to learn its `model` field, which decides the provider. The bytes
 * read so far are replayed ahead of the rest, unchanged. OpenAI clients send the file before the model, so a large
 * file spills to a temporary file instead of sitting in memory; when the model comes first, the upload streams
 * straight through.
 */
export async function peekMultipartModel(source: ReadableStream<Uint8Array>, limit: number): Promise<PeekedUpload> {
  const reader = source.getReader()
  const head: Buffer[] = []
  let headSize = 0
  let total = 0
  let spill: { dir: string; file: string; stream: WriteStream } | undefined
  let model: string | undefined
  let scan = ''
  let done = false
  while (model === undefined) {
    const next = await reader.read()
    if (next.done) {
      done = true
      break
    }
    const chunk = Buffer.from(next.value)
    total += chunk.length
    if (total > limit) {
      await reader.cancel().catch(() => {})
      if (spill) await rm(spill.dir, { recursive: true, force: true })
      throw payloadTooLarge(limit)
    }
    // Only the text around field headers matters: keep a bounded window of it for the search.
    scan = (scan + chunk.toString('latin1')).slice(-64 * 1024)
    const found = MODEL_FIELD.exec(scan)
    if (found) model = Buffer.from(found[1]!, 'latin1').toString('utf8')
    if (!spill && headSize + chunk.length > MEMORY_LIMIT) {
      const dir = await mkdtemp(join(tmpdir(), 'zg-upload-'))
      spill = { dir, file: join(dir, 'upload'), stream: createWriteStream(join(dir, 'upload')) }
      for (const b of head) spill.stream.write(b)
      head.length = 0
    }
    if (spill) spill.stream.write(chunk)
    else {
      head.push(chunk)
      headSize += chunk.length
    }
  }
  if (spill)
    await new Promise<void>((resolve, reject) =>
      spill!.stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    )
  const spilled = spill
  let received = total
  const hash = createHash('sha256')
  async function* replay() {
    const replayed: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = spilled ? createReadStream(spilled.file) : head
    for await (const chunk of replayed) {
      hash.update(chunk)
      yield chunk
    }
    if (done) return
    for (;;) {
      const next = await reader.read()
      if (next.done) return
      received += next.value.byteLength
      if (received > limit) throw payloadTooLarge(limit)
      hash.update(next.value)
      yield next.value
    }
  }
  let digest: string | undefined
  return {
    model,
    body: () => Readable.from(replay()),
    sha256: () => {
      digest ??= hash.digest('hex')
      return digest
    },
    dispose: async () => {
      if (spilled) await rm(spilled.dir, { recursive: true, force: true })
    },
  }
}
