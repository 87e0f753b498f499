import { describe, expect, it } from 'vitest'
import { BackendError } from './errors.ts'
import { type PartInfo, readForm, readMultipart } from './multipart.ts'

const BOUNDARY = '----dev-boundary-42'

function body(): Buffer {
  return Buffer.from(
    'preamble to ignore\r\n' +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\ndev/stt-tone\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a \\"b\\".wav"\r\n` +
      'Content-Type: audio/wav\r\n\r\n' +
      `binary\r\n--not-the-boundary\r\n\r\n--${BOUNDARY.slice(0, 8)}...\r\n` +
      `--${BOUNDARY}--\r\nepilogue`,
    'latin1',
  )
}

function streamOf(bytes: Buffer, chunkSize: number): ReadableStream<Uint8Array> {
  let offset = 0
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close()
      controller.enqueue(bytes.subarray(offset, offset + chunkSize))
      offset += chunkSize
    },
  })
}

async function parse(bytes: Buffer, chunkSize: number) {
  const parts: Array<PartInfo & { data: string }> = []
  await readMultipart(streamOf(bytes, chunkSize), `multipart/form-data; boundary=${BOUNDARY}`, (info) => {
    const chunks: Buffer[] = []
    return {
      write: (chunk) => chunks.push(Buffer.from(chunk)),
      end: () => parts.push({ ...info, data: Buffer.concat(chunks).toString('latin1') }),
    }
  })
  return parts
}

describe('readMultipart', () => {
  it('splits parts exactly, wherever the chunks are cut', async () => {
    const expected = [
      // A part without a Content-Type is text/plain (RFC 7578 §4.4); a quoted-pair in the filename is unescaped.
      { name: 'model', filename: undefined, contentType: 'text/plain', data: 'dev/stt-tone' },
      {
        name: 'file',
        filename: 'a "b".wav',
        contentType: 'audio/wav',
        data: `binary\r\n--not-the-boundary\r\n\r\n--${BOUNDARY.slice(0, 8)}...`,
      },
    ]
    for (const size of [1, 2, 3, 7, 16, 1000]) expect(await parse(body(), size)).toEqual(expected)
  })

  it('rejects a body cut before its closing boundary', async () => {
    await expect(parse(body().subarray(0, 150), 10)).rejects.toThrow(/closing boundary/)
  })

  it('refuses a body that is not multipart', async () => {
    const parse = readMultipart(streamOf(Buffer.from('{}'), 2), 'application/json', () => ({ write() {}, end() {} }))
    await expect(parse).rejects.toThrow(/multipart\/form-data body with a boundary/)
  })
})

describe('readForm', () => {
  const form = (parts: Array<[string, string, string?]>) => {
    const body = parts
      .map(
        ([name, value, filename]) =>
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n${value}\r\n`,
      )
      .join('')
    return streamOf(Buffer.from(`${body}--${BOUNDARY}--\r\n`), 5)
  }
  const type = `multipart/form-data; boundary=${BOUNDARY}`
  const limits = { fileFields: ['image', 'mask'], maxFileBytes: 10, maxFieldBytes: 8, fileParam: 'image' }

  it('collects fields (every value) and files (by name), a file without a filename included', async () => {
    const out = await readForm(
      form([
        ['prompt', 'a cat'],
        ['image', 'AAAA', 'a.png'],
        ['image', 'BBB'],
        ['tag', 'x'],
        ['tag', 'y'],
      ]),
      type,
      limits,
    )
    expect(Object.fromEntries(out.fields)).toEqual({ prompt: ['a cat'], tag: ['x', 'y'] })
    expect(out.files.get('image')!.map((f) => [f.filename, f.bytes.toString()])).toEqual([
      ['a.png', 'AAAA'],
      [undefined, 'BBB'],
    ])
  })

  it('refuses files past their total limit (413) and long fields (400), naming the parameter', async () => {
    const files = readForm(
      form([
        ['image', 'AAAAAA'],
        ['mask', 'BBBBBB'],
      ]),
      type,
      limits,
    )
    await expect(files).rejects.toMatchObject({ status: 413, param: 'image' })
    const field = readForm(form([['prompt', 'a much longer prompt']]), type, limits)
    await expect(field).rejects.toBeInstanceOf(BackendError)
    await expect(field).rejects.toMatchObject({ status: 400, param: 'prompt' })
  })
})
