import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_TTS_MODEL } from '../src/devnet/backends/index.ts'
import { espeakVersion } from '../src/devnet/backends/tts-espeak.ts'
import { DEV_PROVIDERS } from '../src/devnet/dev-stack.ts'
import { startTestStack } from './support/dev-stack.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
let client: OpenAI
const espeak = await espeakVersion('espeak-ng')
/** The dev tts provider's price: neuron per second of audio. */
const PRICE = DEV_PROVIDERS.find((p) => p.serviceType === 'audio-generation')!.outputPrice

beforeAll(async () => {
  stack = await startTestStack()
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-zg-dev', maxRetries: 0 })
})
afterAll(async () => {
  await stack?.dispose()
})

/** A WAV file's header, checked: RIFF/WAVE, PCM, and a data chunk that fills the rest of the file. */
function wavInfo(wav: Buffer) {
  expect(wav.toString('latin1', 0, 4)).toBe('RIFF')
  expect(wav.toString('latin1', 8, 12)).toBe('WAVE')
  expect(wav.toString('latin1', 12, 16)).toBe('fmt ')
  expect(wav.readUInt16LE(20)).toBe(1)
  const channels = wav.readUInt16LE(22)
  const sampleRate = wav.readUInt32LE(24)
  const bits = wav.readUInt16LE(34)
  expect(wav.toString('latin1', 36, 40)).toBe('data')
  const dataBytes = wav.readUInt32LE(40)
  expect(dataBytes).toBe(wav.length - 44)
  return { channels, sampleRate, bits, dataBytes, seconds: dataBytes / ((sampleRate * channels * bits) / 8) }
}

type Receipt = {
  endpoint: string
  usage: { input: string; output: string }
  fee: string
  verification: { status: string; level: string | null; detail: string | null }
}

async function receiptOf(id: string): Promise<Receipt | undefined> {
  let receipt: Receipt | undefined
  for (let i = 0; i < 100 && receipt?.verification.status !== 'verified'; i++) {
    await new Promise((r) => setTimeout(r, 20))
    const res = await fetch(`${stack.baseURL}/receipts/${id}`, { headers: { authorization: 'Bearer sk-zg-dev' } })
    if (res.ok) receipt = (await res.json()) as Receipt
  }
  return receipt
}

describe('text-to-speech through the gateway', () => {
  it('returns playable audio to the official openai client, billed per second and verified', async () => {
    const response = await client.audio.speech.create({
      model: DEV_TTS_MODEL,
      voice: 'alloy',
      input: 'Hello from the zero gee gateway.',
      response_format: 'wav',
    })
    expect(response.headers.get('content-type')).toBe('audio/wav')
    const wav = Buffer.from(await response.arrayBuffer())
    const info = wavInfo(wav)
    expect(info).toMatchObject({ channels: 1, sampleRate: 24_000, bits: 16 })
    expect(info.dataBytes).toBeGreaterThan(0)
    const billed = BigInt(Math.ceil(info.seconds))
    // The provider's 0G headers, passed on, and the gateway's own reckoning of the fee.
    expect(Number(response.headers.get('x-0g-audio-duration-seconds'))).toBeCloseTo(info.seconds, 3)
    expect(response.headers.get('x-0g-fee')).toBe((billed * PRICE).toString())
    expect(response.headers.get('x-zg-fee')).toBe((billed * PRICE).toString())
    expect(response.headers.get('x-zg-provider')).toMatch(/^0x[0-9a-fA-F]{40}$/)
    // The provider signed the exact request and audio bytes; the gateway checked both hashes.
    const receipt = await receiptOf(response.headers.get('x-request-id')!)
    expect(receipt).toMatchObject({
      endpoint: 'audio/speech',
      usage: { input: '0', output: billed.toString() },
      fee: (billed * PRICE).toString(),
      verification: { status: 'verified' },
    })
  })

  it(`makes longer audio of longer text (engine: ${espeak ?? 'tones'}), and answers OpenAI's pcm`, async () => {
    const say = async (input: string, format: 'wav' | 'pcm' = 'wav') =>
      Buffer.from(
        await (
          await client.audio.speech.create({ model: 'tts-1', voice: 'nova', input, response_format: format })
        ).arrayBuffer(),
      )
    const short = wavInfo(await say('Short.'))
    const long = wavInfo(
      await say('This is a much longer sentence, which any speech engine takes a good deal more time to say out loud.'),
    )
    expect(long.seconds).toBeGreaterThan(short.seconds * 3)
    const pcm = await say('Short.', 'pcm')
    expect(pcm.length).toBe(short.dataBytes)
  })

  it('answers OpenAI-shaped 400s: its own validation before any provider, and the provider model refusing', async () => {
    const refused = async (body: Record<string, unknown>) => {
      const err = await client.audio.speech
        .create({ model: DEV_TTS_MODEL, voice: 'alloy', input: 'x', ...body } as OpenAI.Audio.SpeechCreateParams)
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(OpenAI.BadRequestError)
      return (err as InstanceType<typeof OpenAI.BadRequestError>).error as { param: string | null; code: string | null }
    }
    expect(await refused({ input: 'x'.repeat(4097) })).toMatchObject({
      param: 'input',
      code: 'string_above_max_length',
    })
    expect(await refused({ speed: 5 })).toMatchObject({ param: 'speed' })
    expect(await refused({ response_format: 'ogg' })).toMatchObject({ param: 'response_format' })
    expect(await refused({ stream_format: 'sse' })).toMatchObject({ param: 'stream_format' })
    // Valid for OpenAI, but the dev model writes no mp3: the provider's refusal comes through with its param.
    expect(await refused({ response_format: 'mp3' })).toMatchObject({ param: 'response_format' })
  })
})
