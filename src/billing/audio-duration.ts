/**
 * How long a generated audio clip is, for billing text-to-speech per second (0G `audio-generation`). The provider's
 * backend says so in a header (0G brokers' adaptors send X-0G-Audio-Duration-Seconds); a vLLM-style backend does not,
 * and then the clip is measured when its format allows it.
 */

/** The response header that carries the billed audio duration, in seconds (0G broker audio-request-response.md). */
export const AUDIO_DURATION_HEADER = 'X-0G-Audio-Duration-Seconds'
/** The response header that carries the fee charged for the call, in neuron. */
export const FEE_HEADER = 'X-0G-Fee'

/** OpenAI's `pcm` speech format: raw 24 kHz 16-bit signed little-endian mono (its audio.speech API reference). */
export const OPENAI_PCM_BYTES_PER_SECOND = 24_000 * 2

const WAVE_PCM = 1
const WAVE_FLOAT = 3
const WAVE_EXTENSIBLE = 0xfffe

/**
 * The duration of a RIFF/WAVE file of PCM or float samples, in seconds, read from its header and the bytes actually
 * there (a streaming writer leaves the data size at 0 or 0xFFFFFFFF, and a size past the end is not believed).
 * Undefined for anything else, compressed WAV included.
 */
export function wavDurationSeconds(bytes: Uint8Array): number | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    return undefined
  }
  let bytesPerSecond: number | undefined
  let offset = 12
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4)
    const size = buf.readUInt32LE(offset + 4)
    const start = offset + 8
    if (id === 'fmt ') {
      if (size < 16 || start + 16 > buf.length) return undefined
      let format = buf.readUInt16LE(start)
      if (format === WAVE_EXTENSIBLE && size >= 26 && start + 26 <= buf.length) format = buf.readUInt16LE(start + 24)
      const channels = buf.readUInt16LE(start + 2)
      const sampleRate = buf.readUInt32LE(start + 4)
      const bits = buf.readUInt16LE(start + 14)
      if ((format !== WAVE_PCM && format !== WAVE_FLOAT) || channels < 1 || sampleRate < 1 || bits < 8 || bits % 8)
        return undefined
      // Computed from the format rather than read from its byte-rate field, which nothing checks.
      bytesPerSecond = sampleRate * channels * (bits / 8)
    } else if (id === 'data') {
      if (bytesPerSecond === undefined) return undefined
      const there = buf.length - start
      const data = size === 0 || size === 0xffffffff || size > there ? there : size
      return data / bytesPerSecond
    }
    // Chunks are padded to an even size.
    offset = start + size + (size % 2)
  }
  return undefined
}

/** A decimal number of seconds, as X-0G-Audio-Duration-Seconds carries it ("47.2"); undefined for anything else. */
export function durationHeaderSeconds(header: string | undefined | null): number | undefined {
  const value = header?.trim()
  if (!value || value.length > 32 || !/^\d+(\.\d+)?$/.test(value)) return undefined
  return Number(value)
}

/** Where a clip's duration came from: the backend's header, or measuring the bytes. */
export type AudioDuration = { seconds: number; source: 'backend' | 'measured' }

/**
 * The duration of a speech response: the backend's X-0G-Audio-Duration-Seconds when it is a number, else measured
 * from a WAV file, or from raw PCM in OpenAI's pcm format (24 kHz 16-bit mono, the only thing `pcm` means there).
 * Undefined for compressed formats without the header: their duration is not in the bytes without decoding them.
 */
export function speechDuration(params: {
  header: string | undefined | null
  contentType: string
  body: Uint8Array
  /** The request's response_format. */
  responseFormat?: string
}): AudioDuration | undefined {
  const { header, contentType, body } = params
  const stated = durationHeaderSeconds(header)
  if (stated !== undefined) return { seconds: stated, source: 'backend' }
  const wav = wavDurationSeconds(body)
  if (wav !== undefined) return { seconds: wav, source: 'measured' }
  const type = contentType.toLowerCase()
  if (params.responseFormat === 'pcm' || type.startsWith('audio/pcm')) {
    return { seconds: body.byteLength / OPENAI_PCM_BYTES_PER_SECOND, source: 'measured' }
  }
  return undefined
}
