import { describe, expect, it } from 'vitest'
import {
  billedUnits,
  estimateFee,
  feeOf,
  MAX_EDIT_IMAGES,
  speechBilledSeconds,
  speechReserveSeconds,
  usageFromBody,
  usageOfResponse,
} from './pricing.ts'

const prices = { inputPrice: 3n, outputPrice: 1_000_000_000_000n }

/** A 24 kHz 16-bit mono WAV header over `seconds` of silence. */
function wav(seconds: number): Buffer {
  const data = Math.round(seconds * 48_000)
  const out = Buffer.alloc(44 + data)
  out.write('RIFFxxxxWAVEfmt ', 0, 'latin1')
  out.writeUInt32LE(36 + data, 4)
  out.writeUInt32LE(16, 16)
  out.writeUInt16LE(1, 20)
  out.writeUInt16LE(1, 22)
  out.writeUInt32LE(24_000, 24)
  out.writeUInt32LE(48_000, 28)
  out.writeUInt16LE(2, 32)
  out.writeUInt16LE(16, 34)
  out.write('data', 36, 'latin1')
  out.writeUInt32LE(data, 40)
  return out
}

describe('text-to-speech pricing', () => {
  it('bills generated seconds at the output price', () => {
    const usage = { kind: 'output-seconds', seconds: 48n } as const
    expect(billedUnits(usage)).toEqual([0n, 48n])
    expect(feeOf(usage, prices)).toEqual({
      inputFee: 0n,
      outputFee: 48n * prices.outputPrice,
      fee: 48n * prices.outputPrice,
    })
  })

  it('reserves min(max_duration, 120) seconds, 120 without one, rounded up', () => {
    expect(speechReserveSeconds({ input: 'hi' })).toBe(120n)
    expect(speechReserveSeconds({ max_duration: 10 })).toBe(10n)
    expect(speechReserveSeconds({ max_duration: 7.2 })).toBe(8n)
    expect(speechReserveSeconds({ max_duration: 600 })).toBe(120n)
    expect(speechReserveSeconds({ max_duration: -1 })).toBe(120n)
    expect(speechReserveSeconds({ max_duration: '10' })).toBe(120n)
    expect(estimateFee('audio/speech', { max_duration: 30 }, 100, prices)).toBe(30n * prices.outputPrice)
    expect(estimateFee('audio/speech', {}, 100, prices)).toBe(120n * prices.outputPrice)
  })

  it('rounds billed seconds up, within the cap', () => {
    expect(speechBilledSeconds(47.2)).toBe(48n)
    expect(speechBilledSeconds(3)).toBe(3n)
    expect(speechBilledSeconds(0)).toBe(0n)
    expect(speechBilledSeconds(Number.NaN)).toBe(0n)
    expect(speechBilledSeconds(500)).toBe(120n)
    expect(speechBilledSeconds(12.5, 10n)).toBe(10n)
  })

  it("meters a speech response from the provider's duration header, else from the WAV itself", () => {
    const bytes = wav(2.25)
    expect(usageOfResponse('audio/speech', 'audio/wav', bytes, { audioDuration: '2.25' })).toEqual({
      kind: 'output-seconds',
      seconds: 3n,
    })
    expect(usageOfResponse('audio/speech', 'audio/wav', bytes)).toEqual({ kind: 'output-seconds', seconds: 3n })
    expect(usageOfResponse('audio/speech', 'audio/mpeg', Buffer.from('ID3 mp3'))).toBeUndefined()
    expect(usageOfResponse('audio/speech', 'audio/mpeg', Buffer.from('ID3 mp3'), { audioDuration: '130' })).toEqual({
      kind: 'output-seconds',
      seconds: 120n,
    })
  })
})

describe('image edit pricing', () => {
  it('reserves the most images an edit may return when it cannot read n (multipart), bills what came back', () => {
    expect(estimateFee('images/edits', undefined, 5_000_000, prices)).toBe(BigInt(MAX_EDIT_IMAGES) * prices.outputPrice)
    expect(estimateFee('images/edits', { n: 2 }, 100, prices)).toBe(2n * prices.outputPrice)
    const three = { data: [{ b64_json: 'a' }, { b64_json: 'b' }, { b64_json: 'c' }] }
    expect(usageFromBody('images/edits', three)).toEqual({ kind: 'images', count: 3n })
    const body = Buffer.from(JSON.stringify(three))
    expect(usageOfResponse('images/edits', 'application/json', body)).toEqual({ kind: 'images', count: 3n })
    const many = { data: Array.from({ length: 12 }, () => ({ b64_json: 'x' })) }
    expect(usageFromBody('images/edits', many)).toEqual({ kind: 'images', count: BigInt(MAX_EDIT_IMAGES) })
    expect(feeOf({ kind: 'images', count: 3n }, prices).fee).toBe(3n * prices.outputPrice)
  })
})
