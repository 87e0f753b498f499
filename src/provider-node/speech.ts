import type { IncomingHttpHeaders } from 'node:http'
import { AUDIO_DURATION_HEADER, FEE_HEADER, speechDuration } from '../billing/audio-duration.ts'
import {
  feeOf,
  MAX_SPEECH_SECONDS,
  type Prices,
  speechBilledSeconds,
  speechReserveSeconds,
  type Usage,
} from '../billing/pricing.ts'
import { ProviderError } from './provider-error.ts'

/** What the node reads of a text-to-speech body: the seconds it reserves, and the format asked for. */
export type SpeechRequest = { reservedSeconds: bigint; responseFormat: string | undefined }

/** Says where the billed duration came from: the backend's header, the node's measure, or the reservation. */
export const DURATION_SOURCE_HEADER = 'ZG-Audio-Duration-Source'

/**
 * Checks the fields the node bills by (the rest is the backend's to judge): `max_duration`, the 0G extra that bounds
 * what the call may cost, and `stream_format`, since speech is answered whole (0G brokers refuse streaming it rather
 * than fake it by chunking a finished clip).
 */
export function speechRequest(body: Record<string, unknown>): SpeechRequest {
  const max = body.max_duration
  if (max != null && !(typeof max === 'number' && Number.isFinite(max) && max > 0)) {
    throw new ProviderError(
      400,
      'invalid_value',
      `max_duration must be a positive number of seconds (at most ${MAX_SPEECH_SECONDS} are billed)`,
      { param: 'max_duration' },
    )
  }
  if (body.stream_format != null && body.stream_format !== 'audio') {
    throw new ProviderError(400, 'unsupported_value', 'speech is not streamed here: stream_format must be "audio"', {
      param: 'stream_format',
    })
  }
  const format = body.response_format
  return {
    reservedSeconds: speechReserveSeconds(body),
    responseFormat: typeof format === 'string' ? format : undefined,
  }
}

/** The billed usage of a speech answer, and how its duration was found. */
export type MeteredSpeech = {
  usage: Usage & { kind: 'output-seconds' }
  /** The billed duration as sent in X-0G-Audio-Duration-Seconds: as found (to the ms), at most the reservation. */
  durationHeader: string
  source: 'backend' | 'measured' | 'reserved'
}

/**
 * Meters a speech answer: ceil(seconds) at the output price, the seconds from the backend's
 * X-0G-Audio-Duration-Seconds, else measured (WAV, OpenAI's PCM), and never more than the reservation, which
 * max_duration bounded. Compressed audio without the header cannot be measured without decoding it; it is billed at
 * the reservation, as 0G brokers do: the client agreed to that ceiling, and a backend that says nothing cannot be
 * taken to have produced less.
 */
export function meterSpeech(
  request: SpeechRequest,
  headers: IncomingHttpHeaders,
  contentType: string,
  body: Uint8Array,
): MeteredSpeech {
  const header = headers[AUDIO_DURATION_HEADER.toLowerCase()]
  const duration = speechDuration({
    header: typeof header === 'string' ? header : undefined,
    contentType,
    body,
    responseFormat: request.responseFormat,
  })
  const reserved = request.reservedSeconds
  if (!duration) {
    return {
      usage: { kind: 'output-seconds', seconds: reserved },
      durationHeader: reserved.toString(),
      source: 'reserved',
    }
  }
  const seconds = Math.min(duration.seconds, Number(reserved))
  return {
    usage: { kind: 'output-seconds', seconds: speechBilledSeconds(seconds, reserved) },
    durationHeader: String(Math.round(seconds * 1000) / 1000),
    source: duration.source,
  }
}

/** The headers a speech answer carries: its billed duration and fee (0G), and where the duration came from. */
export function speechHeaders(metered: MeteredSpeech, prices: Prices): Record<string, string> {
  return {
    [AUDIO_DURATION_HEADER]: metered.durationHeader,
    [FEE_HEADER]: feeOf(metered.usage, prices).fee.toString(),
    [DURATION_SOURCE_HEADER]: metered.source,
  }
}
