import { describe, expect, it } from 'vitest'
import { ProviderError } from './provider-error.ts'
import { meterSpeech, speechHeaders, speechRequest } from './speech.ts'

/** Raw OpenAI pcm: 24 kHz 16-bit mono, `seconds` long. */
const pcm = (seconds: number) => Buffer.alloc(Math.round(seconds * 48_000))

describe('speechRequest', () => {
  it('reserves min(max_duration, 120) s and remembers the format', () => {
    expect(speechRequest({ input: 'x', voice: 'alloy' })).toEqual({ reservedSeconds: 120n, responseFormat: undefined })
    expect(speechRequest({ max_duration: 9.5, response_format: 'pcm' })).toEqual({
      reservedSeconds: 10n,
      responseFormat: 'pcm',
    })
    expect(speechRequest({ max_duration: 500, stream_format: 'audio' }).reservedSeconds).toBe(120n)
  })

  it('refuses a max_duration that is not a positive number, and streamed speech', () => {
    const refusal = (body: Record<string, unknown>) => {
      try {
        speechRequest(body)
      } catch (err) {
        expect(err).toBeInstanceOf(ProviderError)
        return err as ProviderError
      }
      throw new Error('accepted')
    }
    for (const max of [0, -5, '30', Number.NaN]) {
      expect(refusal({ max_duration: max })).toMatchObject({ status: 400, param: 'max_duration' })
    }
    expect(refusal({ stream_format: 'sse' })).toMatchObject({ status: 400, param: 'stream_format' })
  })
})

describe('meterSpeech', () => {
  const prices = { inputPrice: 1n, outputPrice: 1_000n }
  const request = { reservedSeconds: 120n, responseFormat: 'pcm' }

  it("bills ceil(seconds) × output price from the backend's header, and sends duration and fee on", () => {
    const metered = meterSpeech(request, { 'x-0g-audio-duration-seconds': '47.2' }, 'audio/mpeg', Buffer.alloc(9))
    expect(metered).toEqual({
      usage: { kind: 'output-seconds', seconds: 48n },
      durationHeader: '47.2',
      source: 'backend',
    })
    expect(speechHeaders(metered, prices)).toEqual({
      'X-0G-Audio-Duration-Seconds': '47.2',
      'X-0G-Fee': '48000',
      'ZG-Audio-Duration-Source': 'backend',
    })
  })

  it('measures audio the backend says nothing about', () => {
    expect(meterSpeech(request, {}, 'audio/pcm', pcm(2.5))).toEqual({
      usage: { kind: 'output-seconds', seconds: 3n },
      durationHeader: '2.5',
      source: 'measured',
    })
  })

  it('never bills past the reservation, and bills the reservation for audio it cannot measure', () => {
    const short = { reservedSeconds: 10n, responseFormat: 'pcm' }
    expect(meterSpeech(short, {}, 'audio/pcm', pcm(14.2))).toMatchObject({
      usage: { seconds: 10n },
      durationHeader: '10',
    })
    expect(meterSpeech({ reservedSeconds: 30n, responseFormat: 'mp3' }, {}, 'audio/mpeg', Buffer.from('ID3'))).toEqual({
      usage: { kind: 'output-seconds', seconds: 30n },
      durationHeader: '30',
      source: 'reserved',
    })
  })
})
