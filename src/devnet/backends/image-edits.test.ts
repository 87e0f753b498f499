import { deflateSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_IMAGE_EDIT_MODEL, DEV_IMAGE_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { pngChunk as chunk, decodePng, encodePng } from './png.ts'
import { type ErrorBody, json } from './test-support.ts'

type Images = { created: number; data: Array<{ b64_json: string }> }

let backend: DevBackend
let url: string
beforeAll(async () => {
  backend = await startDevBackend()
  url = `${backend.url}/v1/images/edits`
})
afterAll(() => backend.close())

/** A gradient PNG, its colours shifted by `hue`: a real image to edit. */
function picture(width: number, height: number, hue = 0): Buffer {
  const rgb = new Uint8ClampedArray(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3
      rgb[p] = (x * 4 + hue) % 256
      rgb[p + 1] = (y * 4 + hue * 2) % 256
      rgb[p + 2] = (x + y + hue * 3) % 256
    }
  }
  return encodePng(width, height, rgb)
}

/** An RGBA mask: transparent (to edit) in its left half, opaque in its right half. */
function leftHalfMask(width: number, height: number, withAlpha = true): Buffer {
  const channels = withAlpha ? 4 : 3
  const raw = Buffer.alloc((width * channels + 1) * height)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = y * (width * channels + 1) + 1 + x * channels
      if (withAlpha) raw[o + 3] = x < width / 2 ? 0 : 255
    }
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8
  ihdr[9] = withAlpha ? 6 : 2
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

async function edit(fields: Record<string, string>, files: Array<[string, Buffer]>) {
  const form = new FormData()
  for (const [name, bytes] of files)
    form.append(name, new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'x.png')
  for (const [name, value] of Object.entries(fields)) form.append(name, value)
  return fetch(url, { method: 'POST', body: form })
}

const decoded = async (response: Response) => {
  expect(response.status).toBe(200)
  const out = await json<Images>(response)
  return out.data.map((d) => decodePng(Buffer.from(d.b64_json, 'base64'), 4096 * 4096))
}

describe('image edits', () => {
  const base = picture(64, 48)

  it('returns a PNG of the image size, deterministic, depending on the image and on the prompt', async () => {
    const fields = { model: DEV_IMAGE_EDIT_MODEL, prompt: 'add a red balloon' }
    const [a] = await decoded(await edit(fields, [['image', base]]))
    expect(a).toMatchObject({ width: 64, height: 48 })
    const [again] = await decoded(await edit(fields, [['image', base]]))
    expect(again!.rgb).toEqual(a!.rgb)
    const [otherImage] = await decoded(await edit(fields, [['image', picture(64, 48, 90)]]))
    expect(otherImage!.rgb).not.toEqual(a!.rgb)
    const [otherPrompt] = await decoded(await edit({ ...fields, prompt: 'paint it blue' }, [['image', base]]))
    expect(otherPrompt!.rgb).not.toEqual(a!.rgb)
    // The input shows through: the edit is closer to its image than to another image.
    const distance = (x: Uint8ClampedArray, y: Uint8ClampedArray) => x.reduce((s, v, i) => s + Math.abs(v - y[i]!), 0)
    const input = decodePng(base, 10_000).rgb
    expect(distance(a!.rgb, input)).toBeLessThan(distance(otherImage!.rgb, input))
  })

  it('takes n, size, several images as image[], and no model (the served one)', async () => {
    const two = await decoded(await edit({ prompt: 'x', n: '2', size: '256x256' }, [['image[]', base]]))
    expect(two).toHaveLength(2)
    expect(two[0]).toMatchObject({ width: 256, height: 256 })
    expect(two[0]!.rgb).not.toEqual(two[1]!.rgb)
    const [single] = await decoded(await edit({ prompt: 'x', size: '256x256' }, [['image[]', base]]))
    const [both] = await decoded(
      await edit({ prompt: 'x', size: '256x256' }, [
        ['image[]', base],
        ['image[]', picture(32, 32, 150)],
      ]),
    )
    expect(both!.rgb).not.toEqual(single!.rgb)
  })

  it('edits only where the mask is transparent', async () => {
    const [out] = await decoded(
      await edit({ prompt: 'a storm' }, [
        ['image', base],
        ['mask', leftHalfMask(64, 48)],
      ]),
    )
    const input = decodePng(base, 10_000).rgb
    const pixel = (rgb: Uint8ClampedArray, x: number, y: number) => [
      ...rgb.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3),
    ]
    let changedLeft = 0
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < 64; x++) {
        if (x >= 32) expect(pixel(out!.rgb, x, y)).toEqual(pixel(input, x, y))
        else if (pixel(out!.rgb, x, y).join() !== pixel(input, x, y).join()) changedLeft++
      }
    }
    expect(changedLeft).toBeGreaterThan(32 * 48 * 0.9)
  })

  it('answers 400s naming the parameter', async () => {
    const cases: Array<[Record<string, string>, Array<[string, Buffer]>, string]> = [
      [{ prompt: 'x' }, [], 'image'],
      [{ prompt: 'x' }, [['image', Buffer.from('GIF89a not a png')]], 'image'],
      [{}, [['image', base]], 'prompt'],
      [{ prompt: 'x', response_format: 'url' }, [['image', base]], 'response_format'],
      [{ prompt: 'x', n: '11' }, [['image', base]], 'n'],
      [{ prompt: 'x', size: '300x300' }, [['image', base]], 'size'],
      [{ prompt: 'x', model: DEV_IMAGE_MODEL }, [['image', base]], 'model'],
      [
        { prompt: 'x' },
        [
          ['image', base],
          ['mask', leftHalfMask(64, 48, false)],
        ],
        'mask',
      ],
      [
        { prompt: 'x' },
        [
          ['image', base],
          ['mask', leftHalfMask(32, 48)],
        ],
        'mask',
      ],
    ]
    for (const [fields, files, param] of cases) {
      const response = await edit(fields, files)
      expect({ param, status: response.status }).toEqual({ param, status: 400 })
      expect((await json<ErrorBody>(response)).error.param).toBe(param)
    }
    const notMultipart = await fetch(url, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    })
    expect(notMultipart.status).toBe(400)
  })
})
