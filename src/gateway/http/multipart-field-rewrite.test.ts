import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { rewriteMultipartField } from './multipart-field-rewrite.ts'

const BOUNDARY = '----zgBoundary7MA4YWxk'

type Part = { name: string; filename?: string; value: Buffer }

function form(parts: Part[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = []
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`
    const type = p.filename ? '\r\nContent-Type: application/octet-stream' : ''
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}${type}\r\n\r\n`),
      p.value,
      Buffer.from('\r\n'),
    )
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

async function* chunked(bytes: Buffer, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (cut <= at || cut >= bytes.length) continue
    yield bytes.subarray(at, cut)
    at = cut
  }
  yield bytes.subarray(at)
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = []
  for await (const b of source) out.push(b)
  return Buffer.concat(out)
}

// File contents that look like what the rewriter looks for, without the real delimiter.
const tricky = fc.constantFrom(
  Buffer.from('Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'),
  Buffer.from(`\r\n--${BOUNDARY.slice(0, -1)}\r\n`),
  Buffer.from('\r\n\r\n--'),
  Buffer.from([0, 255, 13, 10, 45, 45]),
)
const fileContent = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      tricky,
    ),
    { maxLength: 6 },
  )
  .map((parts) => Buffer.concat(parts))
  .filter((b) => !b.includes(`\r\n--${BOUNDARY}`))

describe('rewriteMultipartField', () => {
  it('replaces the named field and nothing else, whatever the field order and the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fileContent,
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 30 }),
        fc.nat({ max: 3 }),
        fc.array(fc.nat({ max: 600 }), { maxLength: 12 }),
        async (file, alias, target, modelAt, cuts) => {
          const others: Part[] = [
            { name: 'file', filename: 'a.wav', value: file },
            { name: 'response_format', value: Buffer.from('text') },
            { name: 'prompt', value: Buffer.from('model: not this one') },
          ]
          const parts = [...others]
          parts.splice(modelAt, 0, { name: 'model', value: Buffer.from(alias) })
          const expected = form(parts.map((p) => (p.name === 'model' ? { ...p, value: Buffer.from(target) } : p)))
          const input = form(parts)
          const out = await collect(rewriteMultipartField(chunked(input, cuts), BOUNDARY, 'model', target))
          expect(out.equals(expected)).toBe(true)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('passes a form without the field through byte for byte', async () => {
    const input = form([{ name: 'file', filename: 'x', value: Buffer.from('name="model"') }])
    const out = await collect(rewriteMultipartField(chunked(input, [3, 50, 51]), BOUNDARY, 'model', 'x'))
    expect(out.equals(input)).toBe(true)
  })

  it('reads the name in its quoted and unquoted forms, case-insensitive header', async () => {
    const input = Buffer.from(
      `--${BOUNDARY}\r\ncontent-disposition: form-data; name=model\r\n\r\nalias\r\n--${BOUNDARY}\r\n` +
        `Content-Disposition: form-data; name="modelx"\r\n\r\nkeep\r\n--${BOUNDARY}--\r\n`,
    )
    const out = await collect(rewriteMultipartField(chunked(input, []), BOUNDARY, 'model', 'real/model'))
    expect(out.toString()).toBe(input.toString().replace('\r\n\r\nalias\r\n', '\r\n\r\nreal/model\r\n'))
  })
})
