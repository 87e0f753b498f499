import { describe, expect, it } from 'vitest'
import { type WavFormat, wavReader } from './wav.ts'

/** A stereo WAV_FORMAT_EXTENSIBLE file with a LIST chunk of odd size (so padded) between fmt and data. */
function extensibleWav(frames: Array<[number, number]>): Buffer {
  const fmt = Buffer.alloc(40)
  fmt.writeUInt16LE(0xfffe, 0)
  fmt.writeUInt16LE(2, 2)
  fmt.writeUInt32LE(8000, 4)
  fmt.writeUInt32LE(8000 * 4, 8)
  fmt.writeUInt16LE(4, 12)
  fmt.writeUInt16LE(16, 14)
  fmt.writeUInt16LE(22, 16)
  fmt.writeUInt16LE(16, 18)
  fmt.writeUInt32LE(3, 20)
  fmt.writeUInt16LE(1, 24) // KSDATAFORMAT_SUBTYPE_PCM starts 01 00
  const list = Buffer.from('INFOabc', 'latin1')
  const data = Buffer.alloc(frames.length * 4)
  frames.forEach(([l, r], i) => {
    data.writeInt16LE(l, i * 4)
    data.writeInt16LE(r, i * 4 + 2)
  })
  const chunk = (id: string, body: Buffer) => {
    const head = Buffer.alloc(8)
    head.write(id, 0, 'latin1')
    head.writeUInt32LE(body.length, 4)
    return Buffer.concat([head, body, Buffer.alloc(body.length % 2)])
  }
  const chunks = Buffer.concat([chunk('fmt ', fmt), chunk('LIST', list), chunk('data', data)])
  const riff = Buffer.alloc(12)
  riff.write('RIFF', 0, 'latin1')
  riff.writeUInt32LE(4 + chunks.length, 4)
  riff.write('WAVE', 8, 'latin1')
  return Buffer.concat([riff, chunks])
}

function read(file: Buffer, chunkSize: number) {
  let format: WavFormat | undefined
  const samples: number[] = []
  const reader = wavReader(
    (f) => {
      format = f
    },
    (mono) => samples.push(...mono),
  )
  for (let i = 0; i < file.length; i += chunkSize) reader.write(file.subarray(i, i + chunkSize))
  reader.end()
  return { format, samples }
}

describe('wavReader', () => {
  it('reads extensible PCM past other chunks and mixes stereo to mono, however the bytes arrive', () => {
    const file = extensibleWav([
      [16384, 0],
      [-32768, -32768],
      [100, 300],
    ])
    for (const size of [1, 3, 5, 64]) {
      expect(read(file, size)).toEqual({ format: { sampleRate: 8000, channels: 2 }, samples: [0.25, -1, 200 / 32768] })
    }
  })

  it('rejects files that are not 16-bit PCM WAV', () => {
    expect(() => read(Buffer.from('OggS'.padEnd(64, '\0')), 64)).toThrow(/not a RIFF\/WAVE file/)
    const float = extensibleWav([[0, 0]])
    float.writeUInt16LE(3, 20 + 24)
    expect(() => read(float, 64)).toThrow(/format code 3 is not PCM/)
    expect(() => read(extensibleWav([]).subarray(0, 30), 64)).toThrow(/no data chunk/)
  })
})
