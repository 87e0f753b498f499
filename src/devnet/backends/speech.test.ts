import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { wavDurationSeconds } from '../../billing/audio-duration.ts'
import { DEV_CHAT_MODEL, DEV_TTS_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { type ErrorBody, json, postJson } from './test-support.ts'
import { espeakVersion } from './tts-espeak.ts'

/** Both engines: the tones need nothing, espeak-ng is a Debian package that .ci/run installs. */
const ENGINES = ['tone', 'espeak-ng'] as const

it('finds espeak-ng installed (apt-get install espeak-ng; .ci/run does)', async () => {
  expect(await espeakVersion('espeak-ng')).toMatch(/\d+\.\d+/)
})

/** Checks a WAV file's header field by field, and returns its format and duration. */
function readWav(wav: Buffer) {
  expect(wav.toString('latin1', 0, 4)).toBe('RIFF')
  expect(wav.readUInt32LE(4)).toBe(wav.length - 8)
  expect(wav.toString('latin1', 8, 16)).toBe('WAVEfmt ')
  expect(wav.readUInt32LE(16)).toBe(16)
  expect(wav.readUInt16LE(20)).toBe(1) // PCM
  const channels = wav.readUInt16LE(22)
  const sampleRate = wav.readUInt32LE(24)
  const bits = wav.readUInt16LE(34)
  expect(wav.readUInt32LE(28)).toBe((sampleRate * channels * bits) / 8)
  expect(wav.toString('latin1', 36, 40)).toBe('data')
  const dataBytes = wav.readUInt32LE(40)
  expect(dataBytes).toBe(wav.length - 44)
  return { channels, sampleRate, bits, dataBytes, seconds: dataBytes / ((sampleRate * channels * bits) / 8) }
}

/** The root-mean-square level of 16-bit samples, 0..1: silence is 0. */
function rms(pcm: Buffer): number {
  let sum = 0
  for (let i = 0; i + 1 < pcm.length; i += 2) sum += (pcm.readInt16LE(i) / 32768) ** 2
  return Math.sqrt(sum / (pcm.length / 2))
}

for (const engine of ENGINES) {
  describe(`speech with the ${engine} engine`, () => {
    let backend: DevBackend
    let url: string
    beforeAll(async () => {
      backend = await startDevBackend({ ttsEngine: engine })
      url = `${backend.url}/v1/audio/speech`
    })
    afterAll(() => backend.close())

    const speak = async (body: Record<string, unknown>) => {
      const response = await postJson(url, { model: DEV_TTS_MODEL, voice: 'alloy', ...body })
      return { response, bytes: Buffer.from(await response.arrayBuffer()) }
    }

    it('answers a valid 24 kHz 16-bit mono WAV, deterministic for the same request', async () => {
      const { response, bytes } = await speak({ input: 'The quick brown fox jumps over the lazy dog.' })
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toBe('audio/wav')
      expect(response.headers.get('x-dev-tts-engine')).toBe(engine)
      // A vLLM-shaped backend: the provider node measures the audio, nothing here tells it the duration.
      expect(response.headers.get('x-0g-audio-duration-seconds')).toBeNull()
      const wav = readWav(bytes)
      expect(wav).toMatchObject({ channels: 1, sampleRate: 24_000, bits: 16 })
      expect(wav.seconds).toBeGreaterThan(0.5)
      expect(wav.seconds).toBeLessThan(10)
      expect(wavDurationSeconds(bytes)).toBe(wav.seconds)
      expect(rms(bytes.subarray(44))).toBeGreaterThan(0.01) // not silence
      const again = await speak({ input: 'The quick brown fox jumps over the lazy dog.' })
      expect(again.bytes.equals(bytes)).toBe(true)
    })

    it('follows the text: longer text is longer audio, another text other audio, speed shortens it', async () => {
      const short = readWav((await speak({ input: 'Hello there.' })).bytes)
      const long = readWav(
        (await speak({ input: 'Hello there. This sentence is a good deal longer than the first one was.' })).bytes,
      )
      expect(long.seconds).toBeGreaterThan(short.seconds * 2.5)
      const other = await speak({ input: 'Goodbye there.' })
      const first = await speak({ input: 'Hello there.' })
      expect(other.bytes.equals(first.bytes)).toBe(false)
      const fast = readWav((await speak({ input: 'Hello there.', speed: 2 })).bytes)
      expect(fast.seconds).toBeLessThan(short.seconds * 0.75)
    })

    it('writes OpenAI pcm: the same samples, raw', async () => {
      const input = 'Raw samples, please.'
      const wav = (await speak({ input, response_format: 'wav' })).bytes
      const { response, bytes } = await speak({ input, response_format: 'pcm' })
      expect(response.headers.get('content-type')).toBe('audio/pcm')
      expect(bytes.equals(wav.subarray(44))).toBe(true)
    })

    it('stops at max_duration', async () => {
      const { bytes } = await speak({ input: 'word '.repeat(200), max_duration: 1.5 })
      expect(readWav(bytes).seconds).toBe(1.5)
    })
  })
}

describe('espeak-ng voices', () => {
  let backend: DevBackend
  beforeAll(async () => {
    backend = await startDevBackend({ ttsEngine: 'espeak-ng' })
  })
  afterAll(() => backend.close())

  it('speaks with espeak-ng voices, and refuses a language it does not have', async () => {
    const speak = async (body: Record<string, unknown>) => {
      const response = await postJson(`${backend.url}/v1/audio/speech`, { model: DEV_TTS_MODEL, ...body })
      return { response, bytes: Buffer.from(await response.arrayBuffer()) }
    }
    const german = await speak({ input: 'Guten Morgen.', voice: 'de' })
    expect(german.response.status).toBe(200)
    const english = await speak({ input: 'Guten Morgen.', voice: 'alloy' })
    expect(german.bytes.equals(english.bytes)).toBe(false)
    const unknown = await speak({ input: 'x', voice: 'xx-yy' })
    expect(unknown.response.status).toBe(400)
    expect(JSON.parse(unknown.bytes.toString()).error.param).toBe('voice')
  })
})

describe('speech requests the dev model refuses', () => {
  let backend: DevBackend
  let url: string
  beforeAll(async () => {
    backend = await startDevBackend()
    url = `${backend.url}/v1/audio/speech`
  })
  afterAll(() => backend.close())

  it('answers 400s naming the parameter, as vLLM does', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ input: 'x', voice: 'alloy', response_format: 'mp3' }, 'response_format'],
      [{ input: 'x', voice: 'alloy', response_format: 'ogg' }, 'response_format'],
      [{ input: 'x' }, 'voice'],
      [{ input: 'x', voice: 'not a voice!' }, 'voice'],
      [{ voice: 'alloy' }, 'input'],
      [{ input: 'x'.repeat(4097), voice: 'alloy' }, 'input'],
      [{ input: 'x', voice: 'alloy', speed: 4.5 }, 'speed'],
      [{ input: 'x', voice: 'alloy', stream_format: 'sse' }, 'stream_format'],
      [{ input: 'x', voice: 'alloy', sample_rate: 16_000 }, 'sample_rate'],
      [{ input: 'x', voice: 'alloy', model: DEV_CHAT_MODEL }, 'model'],
    ]
    for (const [body, param] of cases) {
      const response = await postJson(url, body)
      expect({ param, status: response.status }).toEqual({ param, status: 400 })
      expect((await json<ErrorBody>(response)).error.param).toBe(param)
    }
  })

  it('says which engine it has, and falls back to tones when espeak-ng cannot be run', async () => {
    const listed = await json<{ data: Array<{ id: string; engine?: string }> }>(await fetch(`${backend.url}/v1/models`))
    expect(listed.data.find((m) => m.id === DEV_TTS_MODEL)?.engine).toBe(await espeakVersion('espeak-ng'))

    const missing = await startDevBackend({ espeakCommand: '/nonexistent/espeak-ng' })
    try {
      const response = await postJson(`${missing.url}/v1/audio/speech`, { input: 'Hi.', voice: 'nova' })
      expect(response.status).toBe(200)
      expect(response.headers.get('x-dev-tts-engine')).toBe('tone')
    } finally {
      await missing.close()
    }
    const forced = await startDevBackend({ ttsEngine: 'espeak-ng', espeakCommand: '/nonexistent/espeak-ng' })
    try {
      expect((await postJson(`${forced.url}/v1/audio/speech`, { input: 'Hi.', voice: 'nova' })).status).toBe(503)
    } finally {
      await forced.close()
    }
  })
})
