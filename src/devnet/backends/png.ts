import { crc32, deflateSync, inflateSync } from 'node:zlib'

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** One PNG chunk: length, type, data and CRC (also how the tests build PNGs of every kind to decode). */
export function pngChunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length)
  out.writeUInt32BE(data.length, 0)
  out.write(type, 4, 'latin1')
  data.copy(out, 8)
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length)
  return out
}

/** Encodes 8-bit RGB pixels (row-major, 3 bytes per pixel) as a PNG: IHDR, one zlib IDAT, IEND. */
export function encodePng(width: number, height: number, rgb: Uint8Array | Uint8ClampedArray): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type: truecolour
  // compression, filter and interlace methods: 0
  const stride = width * 3
  const raw = Buffer.alloc((stride + 1) * height)
  for (let y = 0; y < height; y++) {
    // Filter type 0 (None) on every row: the image is smooth enough for deflate as it is.
    raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1)
  }
  return Buffer.concat([
    SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

/** A PNG this decoder cannot read, and why. */
export class PngDecodeError extends Error {
  override name = 'PngDecodeError'
}

/** A decoded image: 8-bit RGB, and 8-bit alpha when the PNG has transparency. */
export type DecodedImage = {
  width: number
  height: number
  rgb: Uint8ClampedArray
  alpha: Uint8ClampedArray | undefined
}

/** Channels per colour type: grey, (none), RGB, palette, grey + alpha, (none), RGBA. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] }

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c
  const pa = Math.abs(p - a)
  const pb = Math.abs(p - b)
  const pc = Math.abs(p - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/**
 * Decodes a non-interlaced PNG of any standard colour type and bit depth (16-bit samples keep their high byte),
 * checking each chunk's CRC. At most `maxPixels` pixels: the size is read from the header before anything is
 * inflated, and inflating stops at the size the header promises, so a small upload cannot expand into a huge one.
 */
export function decodePng(png: Buffer, maxPixels: number): DecodedImage {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new PngDecodeError('not a PNG file')
  let width = 0
  let height = 0
  let depth = 0
  let colourType = -1
  let palette: Buffer | undefined
  let transparency: Buffer | undefined
  const idat: Buffer[] = []
  let offset = 8
  for (;;) {
    if (offset + 12 > png.length) throw new PngDecodeError('the file ends before its IEND chunk')
    const length = png.readUInt32BE(offset)
    const type = png.toString('latin1', offset + 4, offset + 8)
    const end = offset + 8 + length
    if (end + 4 > png.length) throw new PngDecodeError(`the ${type} chunk runs past the end of the file`)
    if (crc32(png.subarray(offset + 4, end)) !== png.readUInt32BE(end)) {
      throw new PngDecodeError(`the ${type} chunk is corrupt (CRC mismatch)`)
    }
    const data = png.subarray(offset + 8, end)
    if (type === 'IHDR') {
      if (length !== 13) throw new PngDecodeError('the IHDR chunk has the wrong size')
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      depth = data[8]!
      colourType = data[9]!
      if (data[10] !== 0 || data[11] !== 0) throw new PngDecodeError('unknown compression or filter method')
      if (data[12] !== 0) throw new PngDecodeError('interlaced PNGs are not supported')
      if (!DEPTHS[colourType]?.includes(depth)) {
        throw new PngDecodeError(`colour type ${colourType} with bit depth ${depth} is not valid PNG`)
      }
      if (width < 1 || height < 1) throw new PngDecodeError('the image has no pixels')
      if (width * height > maxPixels) {
        throw new PngDecodeError(`${width}x${height} is larger than ${maxPixels} pixels`)
      }
    } else if (type === 'PLTE') palette = data
    else if (type === 'tRNS') transparency = data
    else if (type === 'IDAT') idat.push(data)
    else if (type === 'IEND') break
    else if (colourType < 0) throw new PngDecodeError('the first chunk is not IHDR')
    offset = end + 4
  }
  if (colourType < 0) throw new PngDecodeError('there is no IHDR chunk')
  if (colourType === 3 && !palette) throw new PngDecodeError('a palette image without a PLTE chunk')

  const channels = CHANNELS[colourType]!
  const bitsPerPixel = channels * depth
  const stride = Math.ceil((width * bitsPerPixel) / 8)
  const expected = (stride + 1) * height
  let inflated: Buffer
  try {
    inflated = inflateSync(Buffer.concat(idat), { maxOutputLength: expected })
  } catch (err) {
    throw new PngDecodeError(`the image data does not inflate: ${(err as Error).message}`)
  }
  if (inflated.length !== expected) throw new PngDecodeError('the image data has the wrong size')

  // Undo the per-row filters in place; `left` is the byte distance to the same sample of the previous pixel.
  const left = Math.max(1, bitsPerPixel / 8)
  const rows = Buffer.alloc(stride * height)
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (stride + 1)]!
    const line = inflated.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    const out = rows.subarray(y * stride, (y + 1) * stride)
    const above = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : undefined
    for (let i = 0; i < stride; i++) {
      const a = i >= left ? out[i - left]! : 0
      const b = above ? above[i]! : 0
      const c = above && i >= left ? above[i - left]! : 0
      const x = line[i]!
      if (filter === 0) out[i] = x
      else if (filter === 1) out[i] = x + a
      else if (filter === 2) out[i] = x + b
      else if (filter === 3) out[i] = x + ((a + b) >> 1)
      else if (filter === 4) out[i] = x + paeth(a, b, c)
      else throw new PngDecodeError(`unknown filter type ${filter}`)
    }
  }

  const max = 2 ** depth - 1
  /** Sample `s` of pixel `x` in row `y`, at the image's own bit depth. */
  const raw = (y: number, x: number, s: number): number => {
    const row = y * stride
    if (depth === 16) return rows.readUInt16BE(row + (x * channels + s) * 2)
    if (depth === 8) return rows[row + x * channels + s]!
    const bit = (x * channels + s) * depth
    return (rows[row + (bit >> 3)]! >> (8 - depth - (bit & 7))) & max
  }
  /** The same, scaled to 8 bits. */
  const byte = (y: number, x: number, s: number): number => {
    const value = raw(y, x, s)
    return depth === 8 ? value : depth === 16 ? value >> 8 : Math.round((value * 255) / max)
  }
  const rgb = new Uint8ClampedArray(width * height * 3)
  const hasAlpha = colourType === 4 || colourType === 6 || transparency !== undefined
  const alpha = hasAlpha ? new Uint8ClampedArray(width * height).fill(255) : undefined
  // A tRNS chunk of a grey or RGB image names one colour, at the image's bit depth, as fully transparent.
  const key =
    transparency && (colourType === 0 || colourType === 2)
      ? Array.from({ length: colourType === 0 ? 1 : 3 }, (_, k) => transparency.readUInt16BE(k * 2))
      : undefined
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x
      if (colourType === 3) {
        const index = raw(y, x, 0)
        if (index * 3 + 2 >= palette!.length) throw new PngDecodeError('a pixel indexes past the end of the palette')
        rgb.set(palette!.subarray(index * 3, index * 3 + 3), p * 3)
        if (alpha && index < transparency!.length) alpha[p] = transparency![index]!
        continue
      }
      const grey = colourType === 0 || colourType === 4
      for (let ch = 0; ch < 3; ch++) rgb[p * 3 + ch] = byte(y, x, grey ? 0 : ch)
      if (colourType === 4 || colourType === 6) alpha![p] = byte(y, x, channels - 1)
      else if (key?.every((k, s) => raw(y, x, s) === k)) alpha![p] = 0
    }
  }
  return { width, height, rgb, alpha }
}
