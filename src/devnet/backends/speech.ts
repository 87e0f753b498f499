import type { Context } from 'hono'
import { z } from 'zod'
import { BackendError, checkModel, readBody } from './errors.ts'
import { DEV_TTS_MODEL } from './models.ts'
import type { DevBackendConfig } from './options.ts'
import { espeakSpeech, espeakVersion, espeakVoice } from './tts-espeak.ts'
import { type Pcm, TONE_SAMPLE_RATE, toneSpeech } from './tts-tone.ts'
import { encodeWav, pcmBytes } from './wav.ts'

/** OpenAI's rate for speech, and the only one `pcm` may mean there: every answer is resampled to it. */
export const SPEECH_SAMPLE_RATE = TONE_SAMPLE_RATE
/** Never more audio than this per call: the 0G max_duration ceiling (its first speech vendor's limit). */
export const MAX_SPEECH_SECONDS = 120

const FORMATS = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'] as const
/** What this model can write without an encoder: the rest are a 400, not a mislabelled WAV. */
const WRITTEN = new Set(['wav', 'pcm'])

const speechRequestSchema = z.looseObject({
  model: z.string().nullish(),
  input: z.string().min(1).max(4096),
  voice: z.string().min(1).max(64),
  response_format: z.enum(FORMATS).nullish(),
  speed: z.number().min(0.25).max(4).nullish(),
  instructions: z.string().max(4096).nullish(),
  stream_format: z.enum(['sse', 'audio']).nullish(),
  // 0G's extras.
  max_duration: z.number().positive().nullish(),
  sample_rate: z.number().int().positive().nullish(),
})

export type SpeakOptions = { voice: string; speed: number; maxSeconds: number }

/** A speech engine: what it is (for /v1/models and the x-dev-tts-engine header), and its voice, at 24 kHz. */
export type TtsEngine = {
  name: 'espeak-ng' | 'tone'
  description: string
  speak(text: string, opts: SpeakOptions): Promise<Pcm>
}

/**
 * Picks the speech engine once per backend: espeak-ng when configured so and it runs (`auto`: when it runs), else
 * the tones. A forced espeak-ng that cannot run is remembered as missing, and speech answers 503.
 */
export function ttsEngine(config: DevBackendConfig): () => Promise<TtsEngine | undefined> {
  const tone = (description: string): TtsEngine => ({
    name: 'tone',
    description,
    speak: async (text, opts) => toneSpeech(text, opts),
  })
  let found: Promise<TtsEngine | undefined> | undefined
  return () => {
    found ??= (async () => {
      if (config.ttsEngine === 'tone') return tone('tone')
      const version = await espeakVersion(config.espeakCommand)
      if (version) {
        return {
          name: 'espeak-ng',
          description: version,
          speak: async (text, opts) =>
            resample(
              await espeakSpeech(config.espeakCommand, text, { voice: opts.voice, speed: opts.speed }),
              SPEECH_SAMPLE_RATE,
            ),
        } satisfies TtsEngine
      }
      return config.ttsEngine === 'auto' ? tone('tone (espeak-ng not found)') : undefined
    })()
    return found
  }
}

/** Linear interpolation to another sample rate: enough for speech, and deterministic. */
export function resample(pcm: Pcm, rate: number): Pcm {
  if (pcm.sampleRate === rate || pcm.samples.length === 0) return { samples: pcm.samples, sampleRate: rate }
  const { samples } = pcm
  const length = Math.round((samples.length * rate) / pcm.sampleRate)
  const out = new Int16Array(length)
  const step = pcm.sampleRate / rate
  for (let i = 0; i < length; i++) {
    const x = i * step
    const j = Math.floor(x)
    const a = samples[Math.min(j, samples.length - 1)]!
    const b = samples[Math.min(j + 1, samples.length - 1)]!
    out[i] = Math.round(a + (b - a) * (x - j))
  }
  return { samples: out, sampleRate: rate }
}

/**
 * POST /v1/audio/speech: OpenAI's text-to-speech body (model, input, voice, response_format, speed, instructions)
 * plus 0G's max_duration. Answers raw audio, 24 kHz 16-bit mono, as WAV or as OpenAI's pcm; `instructions` are
 * accepted and unused. Like vLLM, it sends no duration header: a provider node measures the audio it relays.
 */
export async function speech(c: Context, engine: () => Promise<TtsEngine | undefined>): Promise<Response> {
  const req = await readBody(c, speechRequestSchema)
  checkModel(req.model, DEV_TTS_MODEL)
  const format = req.response_format ?? 'wav'
  if (!WRITTEN.has(format)) {
    throw new BackendError(
      400,
      `${DEV_TTS_MODEL} writes only wav and pcm; ${format} needs an encoder it does not have.`,
      'response_format',
    )
  }
  if (req.stream_format === 'sse') throw new BackendError(400, `${DEV_TTS_MODEL} does not stream`, 'stream_format')
  if (req.sample_rate != null && req.sample_rate !== SPEECH_SAMPLE_RATE) {
    throw new BackendError(400, `${DEV_TTS_MODEL} writes ${SPEECH_SAMPLE_RATE} Hz audio only`, 'sample_rate')
  }
  const maxSeconds = Math.min(req.max_duration ?? MAX_SPEECH_SECONDS, MAX_SPEECH_SECONDS)
  const speed = req.speed ?? 1
  // Checked whatever the engine, so that a request valid on one machine is valid on every other.
  const voice = espeakVoice(req.voice)
  if (!voice) {
    throw new BackendError(
      400,
      `Unknown voice ${JSON.stringify(req.voice)}: use an OpenAI voice name or an espeak-ng voice`,
      'voice',
    )
  }
  const found = await engine()
  if (!found) throw new BackendError(503, 'espeak-ng is configured as the speech engine but cannot be run')
  const pcm = await found.speak(req.input, { voice, speed, maxSeconds })
  const samples = pcm.samples.subarray(0, Math.floor(maxSeconds * SPEECH_SAMPLE_RATE))
  // Both allocate a plain (not shared) ArrayBuffer.
  const body = (
    format === 'wav' ? encodeWav(samples, SPEECH_SAMPLE_RATE) : pcmBytes(samples)
  ) as Uint8Array<ArrayBuffer>
  return c.body(body, 200, {
    'content-type': format === 'wav' ? 'audio/wav' : 'audio/pcm',
    'x-dev-tts-engine': found.name,
  })
}
