import type { Context } from 'hono'
import { BackendError, checkModel } from './errors.ts'
import { DEV_STT_MODEL } from './models.ts'
import { type PartSink, readMultipart } from './multipart.ts'
import { type ToneAnalyzer, toneAnalyzer } from './tone-analysis.ts'
import { RESPONSE_FORMATS, type ResponseFormat, renderTranscript } from './transcript-formats.ts'
import { wavReader } from './wav.ts'

/** OpenAI's and vLLM's upload limit (VLLM_MAX_AUDIO_CLIP_FILESIZE_MB defaults to 25). */
export const MAX_AUDIO_BYTES = 25 * 1024 * 1024

const MAX_FIELD_BYTES = 64 * 1024

function tooLarge(): BackendError {
  return new BackendError(413, `The audio file is larger than ${MAX_AUDIO_BYTES / 1024 / 1024} MiB.`, 'file')
}

/** Collects a small text field; a field that keeps growing is a client error, not a reason to buffer. */
function fieldSink(name: string, values: Map<string, string[]>): PartSink {
  const chunks: Buffer[] = []
  let size = 0
  return {
    write(chunk) {
      size += chunk.length
      if (size > MAX_FIELD_BYTES) throw new BackendError(400, `The form field ${name} is too long`, name)
      chunks.push(chunk)
    },
    end() {
      values.set(name, [...(values.get(name) ?? []), Buffer.concat(chunks).toString('utf8')])
    },
  }
}

/** Streams the upload through the WAV reader into the analyzer, enforcing the size limit as bytes arrive. */
function audioSink(state: { analyzer?: ToneAnalyzer; seen: boolean }): PartSink {
  let size = 0
  state.seen = true
  const reader = wavReader(
    (format) => {
      state.analyzer = toneAnalyzer(format.sampleRate)
    },
    (mono) => state.analyzer!.push(mono),
  )
  return {
    write(chunk) {
      size += chunk.length
      if (size > MAX_AUDIO_BYTES) throw tooLarge()
      reader.write(chunk)
    },
    end: () => reader.end(),
  }
}

function formatOf(value: string | undefined): ResponseFormat {
  if (value === undefined) return 'json'
  if ((RESPONSE_FORMATS as readonly string[]).includes(value)) return value as ResponseFormat
  throw new BackendError(400, `response_format must be one of ${RESPONSE_FORMATS.join(', ')}`, 'response_format')
}

/**
 * POST /v1/audio/transcriptions (multipart: file, model, response_format, language, prompt, temperature,
 * timestamp_granularities[]). The transcript describes the tones in the audio; `prompt` is accepted and unused.
 */
export async function transcriptions(c: Context): Promise<Response> {
  const declared = Number(c.req.header('content-length') ?? 0)
  // Refuse an oversized upload before reading it; the form fields around the file need a little room.
  if (declared > MAX_AUDIO_BYTES + 1024 * 1024) throw tooLarge()
  const body = c.req.raw.body
  if (!body) throw new BackendError(400, 'Expected a multipart/form-data body')
  const fields = new Map<string, string[]>()
  const audio: { analyzer?: ToneAnalyzer; seen: boolean } = { seen: false }
  await readMultipart(body, c.req.header('content-type'), (part) =>
    part.name === 'file' && !audio.seen ? audioSink(audio) : fieldSink(part.name, fields),
  )
  const field = (name: string) => fields.get(name)?.[0]
  checkModel(field('model'), DEV_STT_MODEL)
  const format = formatOf(field('response_format'))
  if (field('stream') === 'true') throw new BackendError(400, `${DEV_STT_MODEL} does not stream transcripts`, 'stream')
  if (!audio.seen) throw new BackendError(400, 'The form has no file field', 'file')
  const temperature = Number(field('temperature') ?? 0)
  if (!Number.isFinite(temperature)) throw new BackendError(400, 'temperature must be a number', 'temperature')
  const granularities = [
    ...(fields.get('timestamp_granularities[]') ?? []),
    ...(fields.get('timestamp_granularities') ?? []),
  ]
  const { body: text, contentType } = renderTranscript(audio.analyzer!.finish(), format, {
    language: field('language') || 'en',
    temperature,
    words: granularities.includes('word'),
  })
  return c.body(text, 200, { 'content-type': contentType })
}
