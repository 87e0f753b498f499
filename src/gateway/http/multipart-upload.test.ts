import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { Busboy } from '@fastify/busboy'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BeforeClose, boundaryOf, type MultipartUploadOptions, readMultipartUpload } from './multipart-upload.ts'
import { GatewayError } from './openai-error.ts'

type Part = { name: string; value: string | Buffer; filename?: string; type?: string }

const BOUNDARY = '----zg-test-boundary-7d1f'

/** A multipart/form-data body, as a client writes it: each part after its delimiter, then the closing one. */
function form(parts: Part[], boundary = BOUNDARY, epilogue = '\r\n'): Buffer {
  const pieces: Buffer[] = []
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? '' : `; filename="${part.filename}"`}`
    const type = part.type ? `Content-Type: ${part.type}\r\n` : ''
    pieces.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`))
    pieces.push(Buffer.from(part.value))
    pieces.push(Buffer.from('\r\n'))
  }
  pieces.push(Buffer.from(`--${boundary}--${epilogue}`))
  return Buffer.concat(pieces)
}

/** A request body that hands over one chunk per read, and counts what was pulled from it. */
function source(chunks: Iterable<Uint8Array>) {
  const state = { pulled: 0, reads: 0 }
  const iterator = chunks[Symbol.iterator]()
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const next = iterator.next()
        if (next.done) controller.close()
        else {
          state.pulled += next.value.byteLength
          state.reads++
          controller.enqueue(next.value)
        }
      },
    },
    { highWaterMark: 0 },
  )
  return { stream, state }
}

function chunked(body: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const cut of [...at, body.length]) {
    if (cut > from) chunks.push(body.subarray(from, cut))
    from = cut
  }
  return chunks
}

async function readAll(readable: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of readable) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

const TRANSCRIPTION: Omit<MultipartUploadOptions, 'contentType' | 'limit'> = {
  fileFields: ['file'],
  requiredFile: { names: ['file'], param: 'file' },
}

function options(extra: Partial<MultipartUploadOptions> = {}, boundary = BOUNDARY): MultipartUploadOptions {
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    limit: 25 * 1024 * 1024,
    ...TRANSCRIPTION,
    ...extra,
  }
}

async function refusal(promise: Promise<unknown>): Promise<GatewayError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(GatewayError)
  return err as GatewayError
}

/** Every text field and file of a form, read by busboy on its own (to check what the gateway sends). */
async function parsed(body: Buffer, boundary: string) {
  const fields: Array<[string, string]> = []
  const files = new Map<string, Buffer>()
  await new Promise<void>((resolve, reject) => {
    const parser = Busboy({ headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } })
    parser.on('field', (name, value) => fields.push([name, value]))
    parser.on('file', (name, stream) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => files.set(name, Buffer.concat(chunks)))
    })
    parser.on('error', reject)
    parser.on('finish', resolve)
    parser.end(body)
  })
  return { fields, files }
}

const WAV = Buffer.concat([Buffer.from('RIFF....WAVEfmt '), Buffer.alloc(64, 7)])

describe('readMultipartUpload', () => {
  it('reads the model when a text field follows it (curl and the OpenAI docs: file, model, response_format)', async () => {
    const body = form([
      { name: 'file', value: WAV, filename: 'a.wav', type: 'audio/wav' },
      { name: 'model', value: 'whisper-1' },
      { name: 'response_format', value: 'text' },
    ])
    const upload = await readMultipartUpload(source([body]).stream, options())
    expect(upload.model).toBe('whisper-1')
    expect(await readAll(upload.body())).toEqual(body)
    expect(upload.fields.get('response_format')).toBe('text')
    expect(upload.sha256()).toBe(sha256(body))
    await upload.dispose()
  })

  it('takes text inside the file that looks like a model field for file content', async () => {
    const evil = Buffer.from(
      `name="model"\r\n\r\nevil\r\n--${BOUNDARY.slice(0, -1)}\r\nContent-Disposition: form-data; name="model"\r\n\r\nevil\r\n`,
    )
    const body = form([
      { name: 'file', value: evil, filename: 'a.wav' },
      { name: 'model', value: 'good' },
    ])
    const upload = await readMultipartUpload(source(chunked(body, [3, 40, 90, 91])).stream, options())
    expect(upload.model).toBe('good')
    expect(await readAll(upload.body())).toEqual(body)
  })

  it('streams the upload straight through once the model and the file have begun', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x41)
    const head = form([{ name: 'model', value: 'm' }]).subarray(0, -`--${BOUNDARY}--\r\n`.length)
    const fileHead = Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`,
    )
    const count = 320 // 20 MiB of file
    function* body() {
      yield head
      yield fileHead
      for (let i = 0; i < count; i++) yield chunk
      yield Buffer.from(`\r\n--${BOUNDARY}--\r\n`)
    }
    const { stream, state } = source(body())
    const upload = await readMultipartUpload(stream, options())
    expect(upload.spilled).toBe(false)
    // Only what it took to see the model and the file's start was read before routing.
    expect(state.reads).toBeLessThanOrEqual(3)
    let size = 0
    let pulledAhead = 0
    for await (const piece of upload.body()) {
      size += (piece as Buffer).length
      pulledAhead = Math.max(pulledAhead, state.pulled - size)
    }
    expect(size).toBe(head.length + fileHead.length + count * chunk.length + `\r\n--${BOUNDARY}--\r\n`.length)
    // The body is pulled as the provider reads it, never buffered whole.
    expect(pulledAhead).toBeLessThan(1024 * 1024)
  })

  it('holds a file that comes before the model in a temporary file past the memory bound', async () => {
    const file = Buffer.alloc(3 * 1024 * 1024, 0x42)
    const body = form([
      { name: 'file', value: file, filename: 'a.wav' },
      { name: 'language', value: 'en' },
      { name: 'model', value: 'm' },
    ])
    const upload = await readMultipartUpload(source(chunked(body, [100, 70_000, 2_000_000])).stream, options())
    expect(upload.spilled).toBe(true)
    expect(upload.fields.get('language')).toBe('en')
    const sent = await readAll(upload.body())
    expect(sent.equals(body)).toBe(true)
    expect(upload.sha256()).toBe(sha256(body))
    await upload.dispose()
  })

  it('answers 413 past the limit, before routing and while streaming', async () => {
    const big = form([
      { name: 'file', value: Buffer.alloc(5000), filename: 'a.wav' },
      { name: 'model', value: 'm' },
    ])
    const early = await refusal(
      readMultipartUpload(source(chunked(big, [1000, 2000])).stream, options({ limit: 4000 })),
    )
    expect(early).toMatchObject({ status: 413, code: 'request_too_large' })

    const late = form([
      { name: 'model', value: 'm' },
      { name: 'file', value: Buffer.alloc(5000), filename: 'a.wav' },
    ])
    const upload = await readMultipartUpload(source(chunked(late, [300, 2000])).stream, options({ limit: 4000 }))
    expect(await refusal(readAll(upload.body()))).toMatchObject({ status: 413, code: 'request_too_large' })
  })

  it('answers 400 for a missing model, an empty one, or a missing file', async () => {
    const noModel = form([{ name: 'file', value: WAV, filename: 'a.wav' }])
    expect(await refusal(readMultipartUpload(source([noModel]).stream, options()))).toMatchObject({
      status: 400,
      param: 'model',
      code: 'missing_required_parameter',
      type: 'invalid_request_error',
    })
    const empty = form([
      { name: 'model', value: '' },
      { name: 'file', value: WAV, filename: 'a.wav' },
    ])
    expect(await refusal(readMultipartUpload(source([empty]).stream, options()))).toMatchObject({ param: 'model' })
    const noFile = form([
      { name: 'model', value: 'm' },
      { name: 'audio', value: WAV, filename: 'a.wav' },
    ])
    expect(await refusal(readMultipartUpload(source([noFile]).stream, options()))).toMatchObject({
      status: 400,
      param: 'file',
      code: 'missing_required_parameter',
    })
  })

  it('counts a file part sent without a filename (curl -F file=<a.wav)', async () => {
    const body = form([
      { name: 'model', value: 'm' },
      { name: 'file', value: Buffer.alloc(200_000, 0x43) },
    ])
    const upload = await readMultipartUpload(source([body]).stream, options())
    expect(upload.model).toBe('m')
    expect(await readAll(upload.body())).toEqual(body)
  })

  it('answers 400 naming the problem for a malformed body', async () => {
    const noBoundary = await refusal(
      readMultipartUpload(source([]).stream, options({ contentType: 'multipart/form-data' })),
    )
    expect(noBoundary).toMatchObject({ status: 400, code: 'invalid_multipart_body' })
    expect(noBoundary.message).toMatch(/boundary/)

    const garbage = await refusal(readMultipartUpload(source([Buffer.from('hello world')]).stream, options()))
    expect(garbage).toMatchObject({ status: 400, code: 'invalid_multipart_body' })
    expect(garbage.message).toMatch(/malformed: Unexpected end of multipart data/)

    const body = form([
      { name: 'file', value: WAV, filename: 'a.wav' },
      { name: 'model', value: 'm' },
    ])
    const cut = await refusal(readMultipartUpload(source([body.subarray(0, body.length - 12)]).stream, options()))
    expect(cut).toMatchObject({ status: 400, code: 'invalid_multipart_body' })

    // Cut short after routing: the stream to the provider fails with the same answer.
    const late = form([
      { name: 'model', value: 'm' },
      { name: 'file', value: Buffer.alloc(10_000), filename: 'a.wav' },
    ])
    const upload = await readMultipartUpload(source(chunked(late.subarray(0, 5000), [300])).stream, options())
    expect(await refusal(readAll(upload.body()))).toMatchObject({ status: 400, code: 'invalid_multipart_body' })
  })

  it('caps text fields, parts, and refuses a second model', async () => {
    const long = form([
      { name: 'prompt', value: 'x'.repeat(70_000) },
      { name: 'model', value: 'm' },
      { name: 'file', value: WAV, filename: 'a.wav' },
    ])
    expect(await refusal(readMultipartUpload(source([long]).stream, options()))).toMatchObject({
      status: 400,
      param: 'prompt',
      code: 'field_too_large',
    })
    const many = form([
      ...Array.from({ length: 20 }, (_, i) => ({ name: `x${i}`, value: 'v' })),
      { name: 'model', value: 'm' },
      { name: 'file', value: WAV, filename: 'a.wav' },
    ])
    expect(await refusal(readMultipartUpload(source([many]).stream, options({ partsLimit: 10 })))).toMatchObject({
      status: 400,
      code: 'too_many_parts',
    })
    const twice = form([
      { name: 'model', value: 'cheap' },
      { name: 'model', value: 'dear' },
      { name: 'file', value: WAV, filename: 'a.wav' },
    ])
    expect(await refusal(readMultipartUpload(source([twice]).stream, options()))).toMatchObject({
      status: 400,
      param: 'model',
      code: 'duplicate_field',
    })
  })

  it('adds fields before the closing delimiter, and may refuse a late one', async () => {
    const body = form([
      { name: 'model', value: 'm' },
      { name: 'image', value: WAV, filename: 'a.png' },
      { name: 'prompt', value: 'a cat' },
    ])
    const imageOptions = (seen: Array<string | undefined>) =>
      options({
        fileFields: ['image', 'image[]', 'mask'],
        requiredFile: { names: ['image', 'image[]'], param: 'image' },
        beforeClose: (fields) => {
          seen.push(fields.get('prompt'))
          if (fields.get('response_format') === 'url')
            throw new GatewayError(400, 'no urls', { param: 'response_format' })
          return fields.has('response_format') ? undefined : { response_format: 'b64_json' }
        },
      })
    const seen: Array<string | undefined> = []
    const upload = await readMultipartUpload(source(chunked(body, [60, 61, 200])).stream, imageOptions(seen))
    const sent = await readAll(upload.body())
    expect(seen).toEqual(['a cat'])
    const close = body.indexOf(`\r\n--${BOUNDARY}--`)
    const added = `\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\nb64_json`
    expect(sent.toString('latin1')).toBe(
      body.subarray(0, close).toString('latin1') + added + body.subarray(close).toString('latin1'),
    )
    expect(upload.sha256()).toBe(sha256(sent))

    const url = form([
      { name: 'model', value: 'm' },
      { name: 'image', value: WAV, filename: 'a.png' },
      { name: 'response_format', value: 'url' },
    ])
    const refused = await readMultipartUpload(source([url]).stream, imageOptions([]))
    expect(await refusal(readAll(refused.body()))).toMatchObject({ status: 400, param: 'response_format' })
  })
  it('hashes what a rewrite of the body yields: the bytes that go out', async () => {
    const body = form([
      { name: 'model', value: 'alias' },
      { name: 'file', value: WAV, filename: 'a.wav' },
    ])
    const upload = await readMultipartUpload(source(chunked(body, [10, 100])).stream, options())
    expect(upload.boundary).toBe(BOUNDARY)
    async function* upper(bytes: AsyncIterable<Buffer>) {
      for await (const chunk of bytes) yield Buffer.from(chunk.toString('latin1').replace('alias', 'TARGET'), 'latin1')
    }
    const sent = await readAll(upload.body(upper))
    expect(sent.toString('latin1')).toBe(body.toString('latin1').replace('alias', 'TARGET'))
    expect(upload.sha256()).toBe(sha256(sent))
  })
})

describe('boundaryOf', () => {
  it('reads plain and quoted boundaries', () => {
    expect(boundaryOf('multipart/form-data; boundary=abc')).toBe('abc')
    expect(boundaryOf('multipart/form-data; charset=utf-8; boundary="a b:c"')).toBe('a b:c')
    expect(boundaryOf('multipart/form-data;boundary=----x;foo=1')).toBe('----x')
    expect(boundaryOf('multipart/form-data')).toBeUndefined()
  })
})

describe('BeforeClose', () => {
  it('finds the closing delimiter across chunks and keeps the epilogue after what it adds', () => {
    const body = Buffer.from('--b\r\nX: y\r\n\r\n--b-\r\n--b\r\n\r\n--b--\r\nepilogue')
    for (let cut = 0; cut <= body.length; cut++) {
      const close = new BeforeClose('b')
      const out = [close.push(body.subarray(0, cut)), close.push(body.subarray(cut)), close.end(Buffer.from('[+]'))]
      expect(Buffer.concat(out).toString()).toBe('--b\r\nX: y\r\n\r\n--b-\r\n--b\r\n[+]\r\n--b--\r\nepilogue')
    }
  })
})

// --- property: any field order, any chunking, adversarial file content -----------------------------------------

const boundaryArb = fc
  .string({ unit: fc.constantFrom(...'abcXYZ019-_'.split('')), minLength: 1, maxLength: 40 })
  .map((s) => `zg${s}`)

/** Pieces that break naive readers: CRLFs, boundary-like lines, and field headers inside the file. */
const fragmentArb = (boundary: string) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    fc.constantFrom(
      '\r\n',
      '\r\n\r\n',
      '--',
      `--${boundary}`,
      `x--${boundary}--`,
      `\r\n--${boundary.slice(0, -1)}`,
      `\r\n-${boundary}`,
      `\r\n--zz${boundary}`,
      'Content-Disposition: form-data; name="model"\r\n\r\nevil-model\r\n',
      'name="response_format"\r\n\r\nurl\r\n',
    ),
  )

const textArb = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('whisper-1', 'dev/stt', 'json', 'text', 'multi\r\nline', 'ünïcödé 🎧', 'name="model"'),
)

type Case = {
  boundary: string
  file: Buffer
  fields: Array<[string, string]>
  order: string[]
  cuts: number[]
  memoryLimit: number
}

const caseArb: fc.Arbitrary<Case> = boundaryArb.chain((boundary) =>
  fc
    .record({
      boundary: fc.constant(boundary),
      file: fc.oneof(
        {
          weight: 4,
          arbitrary: fc
            .array(fragmentArb(boundary), { maxLength: 30 })
            .map((parts) => Buffer.concat(parts.map((p) => Buffer.from(p)))),
        },
        // A file past a small memory bound, to go through the spill.
        { weight: 1, arbitrary: fc.integer({ min: 2000, max: 40_000 }).map((n) => Buffer.alloc(n, 0x0d)) },
      ),
      fields: fc
        .tuple(
          textArb.filter((s) => s.length > 0),
          fc.option(fc.constantFrom('json', 'text', 'srt', 'verbose_json', 'vtt'), { nil: undefined }),
          fc.option(textArb, { nil: undefined }),
          fc.option(textArb, { nil: undefined }),
          fc.option(fc.double({ min: 0, max: 1, noNaN: true }).map(String), { nil: undefined }),
          fc.uniqueArray(fc.tuple(fc.stringMatching(/^x_[a-z0-9_[\]]{1,10}$/), textArb), {
            maxLength: 4,
            selector: ([name]) => name,
          }),
        )
        .map(([model, format, language, prompt, temperature, extra]) => {
          const fields: Array<[string, string]> = [['model', model]]
          if (format !== undefined) fields.push(['response_format', format])
          if (language !== undefined) fields.push(['language', language])
          if (prompt !== undefined) fields.push(['prompt', prompt])
          if (temperature !== undefined) fields.push(['temperature', temperature])
          return [...fields, ...extra]
        }),
      order: fc.nat(),
      cuts: fc.array(fc.nat(), { maxLength: 12 }),
      memoryLimit: fc.constantFrom(1, 64, 1024, 1024 * 1024),
    })
    .chain((c) =>
      // Every order of the file and the fields.
      fc
        .shuffledSubarray(['file', ...c.fields.map(([name]) => name)], { minLength: c.fields.length + 1 })
        .map((order) => ({ ...c, order })),
    ),
)

/** RFC 2046: no part may hold the delimiter (CRLF--boundary); a client picks its boundary so. */
const fits = (c: Case) =>
  [c.file, ...c.fields.map(([, v]) => Buffer.from(v))].every(
    (value) => Buffer.concat([Buffer.from('\r\n'), value]).indexOf(`\r\n--${c.boundary}`) < 0,
  )

function bodyOf(c: Case): Buffer {
  const values = new Map(c.fields)
  return form(
    c.order.map((name) =>
      name === 'file'
        ? { name: 'file', value: c.file, filename: 'clip.wav', type: 'audio/wav' }
        : { name, value: values.get(name)! },
    ),
    c.boundary,
  )
}

describe('readMultipartUpload, for any field order and chunking', () => {
  it('reads the right model and fields, and forwards exactly the bytes received', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb.filter(fits), async (c) => {
        const body = bodyOf(c)
        const values = new Map(c.fields)
        const upload = await readMultipartUpload(
          source(chunked(body, c.cuts)).stream,
          options({ memoryLimit: c.memoryLimit }, c.boundary),
        )
        try {
          expect(upload.model).toBe(values.get('model'))
          // Every field before the model and the file is known before routing.
          const routedAt = Math.max(c.order.indexOf('model'), c.order.indexOf('file'))
          for (const name of c.order.slice(0, routedAt))
            if (name !== 'file') expect(upload.fields.get(name)).toBe(values.get(name))
          if (c.order.indexOf('file') < c.order.indexOf('model') && c.file.length > c.memoryLimit)
            expect(upload.spilled).toBe(true)
          const sent = await readAll(upload.body())
          expect(sent.equals(body)).toBe(true)
          expect(upload.sha256()).toBe(sha256(body))
          expect(Object.fromEntries(upload.fields)).toEqual(Object.fromEntries(values))
          expect(upload.fields.get('response_format')).toBe(values.get('response_format'))
        } finally {
          await upload.dispose()
        }
      }),
      { numRuns: 300 },
    )
  })

  it('adds response_format=b64_json before the close when the client sent none, and nothing else changes', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb.filter(fits), async (c) => {
        const body = bodyOf(c)
        const upload = await readMultipartUpload(
          source(chunked(body, c.cuts)).stream,
          options(
            {
              memoryLimit: c.memoryLimit,
              beforeClose: (fields) => (fields.has('response_format') ? undefined : { response_format: 'b64_json' }),
            },
            c.boundary,
          ),
        )
        try {
          const sent = await readAll(upload.body())
          expect(upload.sha256()).toBe(sha256(sent))
          const out = await parsed(sent, c.boundary)
          const expected = new Map(c.fields)
          if (!expected.has('response_format')) expected.set('response_format', 'b64_json')
          expect(Object.fromEntries(out.fields)).toEqual(Object.fromEntries(expected))
          expect(out.files.get('file')?.equals(c.file)).toBe(true)
          if (c.fields.some(([name]) => name === 'response_format')) expect(sent.equals(body)).toBe(true)
          else expect(sent.length).toBeGreaterThan(body.length)
        } finally {
          await upload.dispose()
        }
      }),
      { numRuns: 150 },
    )
  })
})
