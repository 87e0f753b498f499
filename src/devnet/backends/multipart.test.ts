import { describe, expect, it } from 'vitest'
import { type PartInfo, readMultipart } from './multipart.ts'

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
  await readMultipart(streamOf(bytes, chunkSize), BOUNDARY, (info) => {
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
      { name: 'model', filename: undefined, contentType: undefined, data: 'dev/stt-tone' },
      {
        name: 'file',
        filename: 'a \\"b\\".wav',
        contentType: 'audio/wav',
        data: `binary\r\n--not-the-boundary\r\n\r\n--${BOUNDARY.slice(0, 8)}...`,
      },
    ]
    for (const size of [1, 2, 3, 7, 16, 1000]) expect(await parse(body(), size)).toEqual(expected)
  })

  it('rejects a body cut before its closing boundary', async () => {
    await expect(parse(body().subarray(0, 150), 10)).rejects.toThrow(/closing boundary/)
  })
})
