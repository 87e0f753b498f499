import { BackendError } from './errors.ts'
import type { PartSink } from './multipart.ts'

export type WavFormat = { sampleRate: number; channels: number }

/** RIFF chunks before the samples (fmt, LIST, ...) are small; a huge header is not a WAV file this model reads. */
const MAX_HEADER_BYTES = 1024 * 1024

const PCM = 1
const EXTENSIBLE = 0xfffe

function notSupported(detail: string): BackendError {
  return new BackendError(400, `Unsupported audio: ${detail}. The dev speech model reads 16-bit PCM WAV files.`, 'file')
}

function parseFmt(fmt: Buffer): WavFormat {
  if (fmt.length < 16) throw notSupported('the fmt chunk is truncated')
  let format = fmt.readUInt16LE(0)
  // WAVE_FORMAT_EXTENSIBLE carries the real format code at the start of its sub-format GUID.
  if (format === EXTENSIBLE && fmt.length >= 26) format = fmt.readUInt16LE(24)
  const channels = fmt.readUInt16LE(2)
  const sampleRate = fmt.readUInt32LE(4)
  const bits = fmt.readUInt16LE(14)
  if (format !== PCM) throw notSupported(`WAV format code ${format} is not PCM`)
  if (bits !== 16) throw notSupported(`${bits}-bit samples`)
  if (channels < 1 || sampleRate < 1) throw notSupported('no channels or no sample rate')
  return { sampleRate, channels }
}

/**
 * Reads a WAV file as it streams in: parses the RIFF header, then hands the samples on, mixed down to mono floats in
 * [-1, 1), block by block. Only the header and a partial sample frame are ever buffered.
 */
export function wavReader(onFormat: (format: WavFormat) => void, onSamples: (mono: Float32Array) => void): PartSink {
  let header: Buffer = Buffer.alloc(0)
  let format: WavFormat | undefined
  /** Sample bytes still to come, once inside the data chunk. */
  let remaining = -1
  let carry: Buffer = Buffer.alloc(0)

  const samples = (bytes: Buffer) => {
    const channels = format!.channels
    const block = channels * 2
    let data = carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes
    const whole = data.length - (data.length % block)
    carry = Buffer.from(data.subarray(whole))
    data = data.subarray(0, whole)
    const mono = new Float32Array(whole / block)
    for (let i = 0; i < mono.length; i++) {
      let sum = 0
      for (let ch = 0; ch < channels; ch++) sum += data.readInt16LE(i * block + ch * 2)
      mono[i] = sum / channels / 32768
    }
    if (mono.length > 0) onSamples(mono)
  }

  /** Walks the RIFF chunks in the header buffer; once the data chunk starts, what follows it goes to samples. */
  const parseHeader = () => {
    if (header.length < 12) return
    if (header.toString('latin1', 0, 4) !== 'RIFF' || header.toString('latin1', 8, 12) !== 'WAVE') {
      throw notSupported('not a RIFF/WAVE file')
    }
    let offset = 12
    while (header.length >= offset + 8) {
      const id = header.toString('latin1', offset, offset + 4)
      const size = header.readUInt32LE(offset + 4)
      if (id === 'data') {
        if (!format) throw notSupported('the data chunk comes before the fmt chunk')
        // Streaming writers leave the size at 0 or 0xFFFFFFFF: then the data runs to the end of the file.
        remaining = size === 0 || size === 0xffffffff ? Number.POSITIVE_INFINITY : size
        const rest = header.subarray(offset + 8)
        header = Buffer.alloc(0)
        feed(rest)
        return
      }
      // Chunks are padded to an even size.
      const end = offset + 8 + size + (size % 2)
      if (header.length < end) break
      if (id === 'fmt ') {
        format = parseFmt(header.subarray(offset + 8, offset + 8 + size))
        onFormat(format)
      }
      offset = end
    }
    if (header.length > MAX_HEADER_BYTES) throw notSupported('no data chunk in the first MiB')
  }

  const feed = (bytes: Buffer) => {
    const take = Math.min(bytes.length, remaining)
    remaining -= take
    if (take > 0) samples(bytes.subarray(0, take))
  }

  return {
    write(chunk) {
      if (remaining >= 0) return feed(chunk)
      header = Buffer.concat([header, chunk])
      parseHeader()
    },
    end() {
      if (remaining < 0) throw notSupported(header.length < 12 ? 'the file is too short' : 'there is no data chunk')
    },
  }
}

/** A 16-bit PCM mono WAV file: the 44-byte canonical header, then the samples, little-endian. */
export function encodeWav(samples: Int16Array, sampleRate: number): Buffer {
  const data = pcmBytes(samples)
  const header = Buffer.alloc(44)
  header.write('RIFF', 0, 'latin1')
  header.writeUInt32LE(36 + data.length, 4)
  header.write('WAVEfmt ', 8, 'latin1')
  header.writeUInt32LE(16, 16)
  header.writeUInt16LE(PCM, 20)
  header.writeUInt16LE(1, 22)
  header.writeUInt32LE(sampleRate, 24)
  header.writeUInt32LE(sampleRate * 2, 28)
  header.writeUInt16LE(2, 32)
  header.writeUInt16LE(16, 34)
  header.write('data', 36, 'latin1')
  header.writeUInt32LE(data.length, 40)
  return Buffer.concat([header, data])
}

/** The samples as raw 16-bit signed little-endian bytes, whatever the machine's byte order. */
export function pcmBytes(samples: Int16Array): Buffer {
  const out = Buffer.alloc(samples.length * 2)
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, i * 2)
  return out
}
