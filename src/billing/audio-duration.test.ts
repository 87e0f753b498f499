import { describe, expect, it } from 'vitest'
import { OPENAI_PCM_BYTES_PER_SECOND, speechDuration, wavDurationSeconds } from './audio-duration.ts'

/** A WAV header (PCM unless told) over `dataBytes` bytes of silence, with optional chunks before the data. */
function wav(opts: {
  rate: number
  channels: number
  bits: number
  dataBytes: number
  format?: number
  size?: number
  before?: Buffer
}) {
  const fmt = Buffer.alloc(24)
  fmt.write('fmt ', 0, 'latin1')
  fmt.writeUInt32LE(16, 4)
  fmt.writeUInt16LE(opts.format ?? 1, 8)
  fmt.writeUInt16LE(opts.channels, 10)
  fmt.writeUInt32LE(opts.rate, 12)
  fmt.writeUInt32LE((opts.rate * opts.channels * opts.bits) / 8, 16)
  fmt.writeUInt16LE((opts.channels * opts.bits) / 8, 20)
  fmt.writeUInt16LE(opts.bits, 22)
  const data = Buffer.alloc(8)
  data.write('data', 0, 'latin1')
  data.writeUInt32LE(opts.size ?? opts.dataBytes, 4)
  const head = Buffer.alloc(12)
  head.write('RIFF', 0, 'latin1')
  head.write('WAVE', 8, 'latin1')
  const out = Buffer.concat([head, fmt, opts.before ?? Buffer.alloc(0), data, Buffer.alloc(opts.dataBytes)])
  out.writeUInt32LE(out.length - 8, 4)
  return out
}

describe('wavDurationSeconds', () => {
  it('measures PCM and float WAV files, skipping chunks before the data', () => {
    expect(wavDurationSeconds(wav({ rate: 24_000, channels: 1, bits: 16, dataBytes: 72_000 }))).toBe(1.5)
    expect(wavDurationSeconds(wav({ rate: 44_100, channels: 2, bits: 16, dataBytes: 176_400 }))).toBe(1)
    expect(wavDurationSeconds(wav({ rate: 8_000, channels: 1, bits: 32, dataBytes: 16_000, format: 3 }))).toBe(0.5)
    const list = Buffer.concat([Buffer.from('LIST', 'latin1'), Buffer.from([5, 0, 0, 0]), Buffer.from('INFOx\0')])
    expect(wavDurationSeconds(wav({ rate: 16_000, channels: 1, bits: 16, dataBytes: 32_000, before: list }))).toBe(1)
  })

  it('believes only the bytes that are there: streaming sizes (0, 0xFFFFFFFF) and sizes past the end', () => {
    for (const size of [0, 0xffffffff, 10_000_000]) {
      expect(wavDurationSeconds(wav({ rate: 24_000, channels: 1, bits: 16, dataBytes: 24_000, size }))).toBe(0.5)
    }
  })

  it('measures nothing it cannot: not WAV, compressed WAV, no fmt', () => {
    expect(wavDurationSeconds(Buffer.from('ID3\x04 an mp3'))).toBeUndefined()
    expect(wavDurationSeconds(wav({ rate: 8_000, channels: 1, bits: 8, dataBytes: 100, format: 0x55 }))).toBeUndefined()
    expect(wavDurationSeconds(Buffer.from('RIFF\0\0\0\0WAVEdata\0\0\0\0', 'latin1'))).toBeUndefined()
  })
})

describe('speechDuration', () => {
  const audio = wav({ rate: 24_000, channels: 1, bits: 16, dataBytes: 48_000 })

  it("takes the backend's header first, then measures WAV, then OpenAI pcm", () => {
    expect(speechDuration({ header: '47.2', contentType: 'audio/mpeg', body: Buffer.alloc(10) })).toEqual({
      seconds: 47.2,
      source: 'backend',
    })
    expect(speechDuration({ header: undefined, contentType: 'audio/wav', body: audio })).toEqual({
      seconds: 1,
      source: 'measured',
    })
    const pcm = Buffer.alloc(OPENAI_PCM_BYTES_PER_SECOND * 3)
    expect(
      speechDuration({ header: null, contentType: 'application/octet-stream', body: pcm, responseFormat: 'pcm' }),
    ).toEqual({ seconds: 3, source: 'measured' })
    expect(speechDuration({ header: null, contentType: 'audio/pcm', body: pcm })?.seconds).toBe(3)
  })

  it('ignores a header that is not a duration, and gives up on compressed audio without one', () => {
    for (const header of ['', 'soon', '-3', 'NaN', 'Infinity', '0x10', '1e3', '9'.repeat(400)]) {
      expect(speechDuration({ header, contentType: 'audio/wav', body: audio })).toEqual({
        seconds: 1,
        source: 'measured',
      })
    }
    expect(
      speechDuration({ header: undefined, contentType: 'audio/mpeg', body: Buffer.from('ID3...') }),
    ).toBeUndefined()
  })
})
