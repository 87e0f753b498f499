import { deflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { pngChunk as chunk, decodePng, encodePng, PngDecodeError } from './png.ts'

const paeth = (a: number, b: number, c: number) => {
  const p = a + b - c
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)]
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/** A PNG from raw scanlines, each row filtered with the next of `filters` (0-4), as an encoder may choose. */
function png(opts: {
  width: number
  height: number
  depth: number
  colourType: number
  rows: Buffer[]
  filters?: number[]
  extra?: Buffer[]
  interlace?: number
}): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[opts.colourType]!
  const bpp = Math.max(1, (channels * opts.depth) / 8)
  const filtered: Buffer[] = []
  opts.rows.forEach((row, y) => {
    const filter = opts.filters?.[y % opts.filters.length] ?? 0
    const above = y > 0 ? opts.rows[y - 1]! : Buffer.alloc(row.length)
    const out = Buffer.alloc(row.length + 1)
    out[0] = filter
    for (let i = 0; i < row.length; i++) {
      const a = i >= bpp ? row[i - bpp]! : 0
      const b = above[i]!
      const c = i >= bpp ? above[i - bpp]! : 0
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter]!
      out[i + 1] = (row[i]! - predictor) & 0xff
    }
    filtered.push(out)
  })
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(opts.width, 0)
  ihdr.writeUInt32BE(opts.height, 4)
  ihdr[8] = opts.depth
  ihdr[9] = opts.colourType
  ihdr[12] = opts.interlace ?? 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(opts.extra ?? []),
    chunk('IDAT', deflateSync(Buffer.concat(filtered))),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

describe('decodePng', () => {
  it('reads back what encodePng wrote', () => {
    const rgb = new Uint8ClampedArray(5 * 3 * 3).map((_, i) => (i * 37) % 256)
    const out = decodePng(encodePng(5, 3, rgb), 100)
    expect(out).toMatchObject({ width: 5, height: 3, alpha: undefined })
    expect([...out.rgb]).toEqual([...rgb])
  })

  it('undoes every filter type, for RGBA', () => {
    const rows = Array.from({ length: 5 }, (_, y) =>
      Buffer.from(Array.from({ length: 4 * 4 }, (_, i) => (y * 53 + i * 29) % 256)),
    )
    const out = decodePng(png({ width: 4, height: 5, depth: 8, colourType: 6, rows, filters: [0, 1, 2, 3, 4] }), 100)
    expect(out.rgb[0]).toBe(rows[0]![0])
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 4; x++) {
        const p = y * 4 + x
        expect([...out.rgb.subarray(p * 3, p * 3 + 3)]).toEqual([...rows[y]!.subarray(x * 4, x * 4 + 3)])
        expect(out.alpha![p]).toBe(rows[y]![x * 4 + 3])
      }
    }
  })

  it('reads grey, 16-bit, packed 1-bit and palette images with transparency', () => {
    const grey = decodePng(png({ width: 2, height: 1, depth: 8, colourType: 0, rows: [Buffer.from([0, 200])] }), 10)
    expect([...grey.rgb]).toEqual([0, 0, 0, 200, 200, 200])
    // 16-bit grey + alpha keeps the high bytes.
    const deep = decodePng(
      png({ width: 1, height: 1, depth: 16, colourType: 4, rows: [Buffer.from([0x12, 0x34, 0xab, 0xcd])] }),
      10,
    )
    expect([...deep.rgb, ...deep.alpha!]).toEqual([0x12, 0x12, 0x12, 0xab])
    // 1-bit grey: 10100000 for three pixels is white, black, white.
    const bits = decodePng(png({ width: 3, height: 1, depth: 1, colourType: 0, rows: [Buffer.from([0b10100000])] }), 10)
    expect([...bits.rgb]).toEqual([255, 255, 255, 0, 0, 0, 255, 255, 255])
    // 4-bit palette of two colours, the second half transparent.
    const palette = decodePng(
      png({
        width: 2,
        height: 1,
        depth: 4,
        colourType: 3,
        rows: [Buffer.from([0x01])],
        extra: [chunk('PLTE', Buffer.from([255, 0, 0, 0, 0, 255])), chunk('tRNS', Buffer.from([255, 128]))],
      }),
      10,
    )
    expect([...palette.rgb]).toEqual([255, 0, 0, 0, 0, 255])
    expect([...palette.alpha!]).toEqual([255, 128])
    // An RGB colour key: that colour is transparent, others opaque.
    const keyed = decodePng(
      png({
        width: 2,
        height: 1,
        depth: 8,
        colourType: 2,
        rows: [Buffer.from([1, 2, 3, 4, 5, 6])],
        extra: [chunk('tRNS', Buffer.from([0, 4, 0, 5, 0, 6]))],
      }),
      10,
    )
    expect([...keyed.alpha!]).toEqual([255, 0])
  })

  it('refuses what it cannot or must not read, before inflating a huge image', () => {
    const tiny = png({ width: 1, height: 1, depth: 8, colourType: 2, rows: [Buffer.from([1, 2, 3])] })
    const refusal = (bytes: Buffer, max = 10) => {
      try {
        decodePng(bytes, max)
      } catch (err) {
        expect(err).toBeInstanceOf(PngDecodeError)
        return (err as Error).message
      }
      throw new Error('decoded')
    }
    expect(refusal(Buffer.from('GIF89a...'))).toMatch(/not a PNG/)
    expect(refusal(tiny.subarray(0, tiny.length - 20))).toMatch(/past the end|before its IEND/)
    const corrupt = Buffer.from(tiny)
    corrupt[20] = corrupt[20]! ^ 0xff
    expect(refusal(corrupt)).toMatch(/CRC/)
    const interlaced = png({
      width: 1,
      height: 1,
      depth: 8,
      colourType: 2,
      rows: [Buffer.from([1, 2, 3])],
      interlace: 1,
    })
    expect(refusal(interlaced)).toMatch(/interlaced/)
    // A header claiming 100000 x 100000 pixels is refused from the header alone.
    const huge = png({ width: 100_000, height: 100_000, depth: 8, colourType: 0, rows: [] })
    expect(refusal(huge, 4_000_000)).toMatch(/larger than 4000000 pixels/)
    expect(refusal(png({ width: 2, height: 2, depth: 8, colourType: 2, rows: [Buffer.from([1, 2, 3])] }))).toMatch(
      /wrong size/,
    )
  })
})
