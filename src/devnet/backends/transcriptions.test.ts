import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_STT_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { type ErrorBody, json } from './test-support.ts'

type Transcript = {
  text: string
  task?: string
  language?: string
  duration?: number
  segments: Array<{ start: number; end: number; tokens: number[] }>
  words: Array<{ word: string; start: number; end: number }>
  usage: { type: string; seconds: number }
}

let backend: DevBackend
let url: string
beforeAll(async () => {
  backend = await startDevBackend()
  url = `${backend.url}/v1/audio/transcriptions`
})
afterAll(() => backend.close())

/** A piece of a test recording: a sine tone (frequency in Hz, amplitude 0..1) or, with frequency 0, silence. */
type Piece = { seconds: number; frequency: number; amplitude?: number }

/** A 16-bit PCM WAV of tones and silences. */
function wav(pieces: Piece[], sampleRate = 16_000, channels = 1): Buffer {
  const frames = pieces.reduce((sum, p) => sum + Math.round(p.seconds * sampleRate), 0)
  const data = Buffer.alloc(frames * channels * 2)
  let frame = 0
  for (const { seconds, frequency, amplitude = 0.5 } of pieces) {
    const count = Math.round(seconds * sampleRate)
    for (let i = 0; i < count; i++, frame++) {
      const value =
        frequency > 0 ? Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * frequency * i) / sampleRate)) : 0
      for (let ch = 0; ch < channels; ch++) data.writeInt16LE(value, (frame * channels + ch) * 2)
    }
  }
  const header = Buffer.alloc(44)
  header.write('RIFF', 0, 'latin1')
  header.writeUInt32LE(36 + data.length, 4)
  header.write('WAVEfmt ', 8, 'latin1')
  header.writeUInt32LE(16, 16)
  header.writeUInt16LE(1, 20)
  header.writeUInt16LE(channels, 22)
  header.writeUInt32LE(sampleRate, 24)
  header.writeUInt32LE(sampleRate * channels * 2, 28)
  header.writeUInt16LE(channels * 2, 32)
  header.writeUInt16LE(16, 34)
  header.write('data', 36, 'latin1')
  header.writeUInt32LE(data.length, 40)
  return Buffer.concat([header, data])
}

async function transcribe(audio: Buffer, fields: Record<string, string | string[]> = {}) {
  const form = new FormData()
  form.append('file', new Blob([new Uint8Array(audio)], { type: 'audio/wav' }), 'audio.wav')
  form.append('model', DEV_STT_MODEL)
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) form.append(name, v)
  }
  return fetch(url, { method: 'POST', body: form })
}

// 0.3 s of silence, A4 at -17 dBFS for 1 s, 0.5 s of silence, E5 at -37 dBFS for 0.7 s, 0.2 s of silence: 2.7 s.
const FIRST = wav([
  { seconds: 0.3, frequency: 0 },
  { seconds: 1, frequency: 440, amplitude: 0.2 },
  { seconds: 0.5, frequency: 0 },
  { seconds: 0.7, frequency: 659.25, amplitude: 0.02 },
  { seconds: 0.2, frequency: 0 },
])
// Stereo at 44.1 kHz: C3 at -4 dBFS for 1.5 s, then silence: 2 s.
const SECOND = wav(
  [
    { seconds: 1.5, frequency: 130.81, amplitude: 0.9 },
    { seconds: 0.5, frequency: 0 },
  ],
  44_100,
  2,
)

describe('audio transcriptions', () => {
  it('describes each tone of the audio, so different audio gives different text', async () => {
    const first = await json<Transcript>(await transcribe(FIRST))
    const second = await json<Transcript>(await transcribe(SECOND))
    expect(first.text).toBe('Moderate tone at A4 (440 Hz) for 1.0 seconds. Quiet tone at E5 (659 Hz) for 0.7 seconds.')
    expect(second.text).toBe('Loud tone at C3 (131 Hz) for 1.5 seconds.')
    expect(first.usage).toEqual({ type: 'duration', seconds: 3 })
    expect(second.usage).toEqual({ type: 'duration', seconds: 2 })
  })

  it('gives the duration and segment times in verbose_json, with words when asked', async () => {
    const response = await transcribe(FIRST, {
      response_format: 'verbose_json',
      language: 'en',
      'timestamp_granularities[]': ['word', 'segment'],
    })
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const out = await json<Transcript>(response)
    expect(out).toMatchObject({ task: 'transcribe', language: 'en', duration: 2.7 })
    expect(out.segments).toHaveLength(2)
    expect(out.segments[0]!.start).toBeCloseTo(0.3, 1)
    expect(out.segments[0]!.end).toBeCloseTo(1.3, 1)
    expect(out.segments[1]!.start).toBeCloseTo(1.8, 1)
    expect(out.segments[1]!.end).toBeCloseTo(2.5, 1)
    for (const segment of out.segments) {
      expect(segment.tokens.length).toBeGreaterThan(0)
      expect(segment).toHaveProperty('avg_logprob')
      expect(segment).toHaveProperty('compression_ratio')
      expect(segment).toHaveProperty('no_speech_prob')
    }
    expect(out.words[0]).toMatchObject({ word: 'Moderate' })
    expect(out.words.at(-1)!.end).toBeCloseTo(out.segments[1]!.end, 2)
  })

  it('writes text, SRT and VTT with the segment times', async () => {
    const text = await transcribe(SECOND, { response_format: 'text' })
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(await text.text()).toBe('Loud tone at C3 (131 Hz) for 1.5 seconds.')
    const srt = await (await transcribe(FIRST, { response_format: 'srt' })).text()
    expect(srt).toBe(
      '1\n00:00:00,300 --> 00:00:01,300\nModerate tone at A4 (440 Hz) for 1.0 seconds.\n\n' +
        '2\n00:00:01,800 --> 00:00:02,500\nQuiet tone at E5 (659 Hz) for 0.7 seconds.\n\n',
    )
    const vtt = await (await transcribe(SECOND, { response_format: 'vtt' })).text()
    expect(vtt).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nLoud tone at C3 (131 Hz) for 1.5 seconds.\n\n')
  })

  it('gives empty text for silence', async () => {
    const silence = wav([{ seconds: 1, frequency: 0 }])
    const out = await json<Transcript>(await transcribe(silence, { response_format: 'verbose_json' }))
    expect(out).toMatchObject({ text: '', duration: 1, segments: [] })
  })

  it('rejects what is not a 16-bit PCM WAV, an unknown model and a missing file', async () => {
    const notWav = await transcribe(Buffer.from('ID3 this is an mp3, honestly'.repeat(10)))
    expect(notWav.status).toBe(400)
    expect((await json<ErrorBody>(notWav)).error).toMatchObject({ type: 'BadRequestError', param: 'file' })
    const eightBit = wav([{ seconds: 0.1, frequency: 440 }])
    eightBit.writeUInt16LE(8, 34)
    expect((await transcribe(eightBit)).status).toBe(400)
    const form = new FormData()
    form.append('file', new Blob([new Uint8Array(FIRST)]), 'a.wav')
    form.append('model', 'whisper-1')
    expect((await fetch(url, { method: 'POST', body: form })).status).toBe(404)
    const noFile = new FormData()
    noFile.append('model', DEV_STT_MODEL)
    expect((await fetch(url, { method: 'POST', body: noFile })).status).toBe(400)
  })

  it('streams a 24 MB upload and rejects one over 25 MiB', async () => {
    // 24 MB of 16 kHz mono is 750 s: a tone every 10 s.
    const pieces: Piece[] = []
    for (let i = 0; i < 75; i++) pieces.push({ seconds: 1, frequency: 220 + i * 10 }, { seconds: 9, frequency: 0 })
    const big = wav(pieces)
    expect(big.length).toBeGreaterThan(24_000_000)
    const out = await json<Transcript>(await transcribe(big, { response_format: 'verbose_json' }))
    expect(out.duration).toBe(750)
    expect(out.segments).toHaveLength(75)
    const tooBig = wav([{ seconds: (26 * 1024 * 1024) / 32_000, frequency: 0 }])
    expect((await transcribe(tooBig)).status).toBe(413)
  }, 60_000)

  it('stops reading an upload of unknown length once it passes 25 MiB', async () => {
    const boundary = 'dev-boundary'
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`)
    // A streaming writer's WAV: the data chunk's size is left unknown.
    const wavHead = wav([]).fill(0xff, 40, 44)
    const silence = Buffer.alloc(1024 * 1024)
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(Buffer.concat([head, wavHead])),
      pull(controller) {
        sent += silence.length
        if (sent > 40 * 1024 * 1024) controller.close()
        else controller.enqueue(silence)
      },
    })
    const response = await fetch(url, {
      method: 'POST',
      body,
      duplex: 'half',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    } as RequestInit)
    expect(response.status).toBe(413)
    expect(sent).toBeLessThan(40 * 1024 * 1024)
  })
})
