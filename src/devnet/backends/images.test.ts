import { inflateSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_IMAGE_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { type ErrorBody, json, postJson } from './test-support.ts'

type Images = { created: number; data: Array<{ b64_json: string }> }

let backend: DevBackend
let url: string
beforeAll(async () => {
  backend = await startDevBackend()
  url = `${backend.url}/v1/images/generations`
})
afterAll(() => backend.close())

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** Checks a PNG's structure (signature, IHDR, IDAT inflating to the right size) and returns its size. */
function readPng(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true)
  expect(png.toString('latin1', 12, 16)).toBe('IHDR')
  const width = png.readUInt32BE(16)
  const height = png.readUInt32BE(20)
  const idat = png.indexOf('IDAT')
  const raw = inflateSync(png.subarray(idat + 4, idat + 4 + png.readUInt32BE(idat - 4)))
  expect(raw.length).toBe((width * 3 + 1) * height)
  expect(png.subarray(-8, -4).toString('latin1')).toBe('IEND')
  return { width, height }
}

describe('image generations', () => {
  it('returns n valid PNGs of the requested size, deterministic per prompt', async () => {
    const response = await postJson(url, {
      model: DEV_IMAGE_MODEL,
      prompt: 'a red fox',
      n: 2,
      size: '256x256',
      response_format: 'b64_json',
    })
    expect(response.status).toBe(200)
    const out = await json<Images>(response)
    expect(Number.isInteger(out.created)).toBe(true)
    expect(out.data).toHaveLength(2)
    const [a, b] = out.data.map((d) => Buffer.from(d.b64_json, 'base64'))
    expect(readPng(a!)).toEqual({ width: 256, height: 256 })
    expect(a!.equals(b!)).toBe(false)
    const again = await json<Images>(await postJson(url, { prompt: 'a red fox', size: '256x256' }))
    expect(again.data[0]!.b64_json).toBe(out.data[0]!.b64_json)
    const other = await json<Images>(await postJson(url, { prompt: 'a blue whale', size: '256x256' }))
    expect(other.data[0]!.b64_json).not.toBe(out.data[0]!.b64_json)
  })

  it('draws the big sizes', async () => {
    const out = await json<Images>(await postJson(url, { prompt: 'x', size: '1024x1536' }))
    expect(readPng(Buffer.from(out.data[0]!.b64_json, 'base64'))).toEqual({ width: 1024, height: 1536 })
  })

  it('refuses the url format and unknown sizes', async () => {
    const asUrl = await postJson(url, { prompt: 'x', response_format: 'url' })
    expect(asUrl.status).toBe(400)
    expect((await json<ErrorBody>(asUrl)).error.param).toBe('response_format')
    expect((await postJson(url, { prompt: 'x', size: '300x300' })).status).toBe(400)
  })
})
