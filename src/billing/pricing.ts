import { speechDuration } from './audio-duration.ts'

/**
 * 0G fees, in neuron. Prices on-chain are neuron per unit: per token for chat, completions and embeddings; per
 * image (outputPrice) for images; per second (inputPrice) for speech-to-text in duration mode
 * (0g-protocol.md §2 "Units", §3.3 extractors); per second of generated audio (outputPrice) for text-to-speech.
 */
export type Prices = { inputPrice: bigint; outputPrice: bigint }

/**
 * The 0G service types (on-chain `serviceType`) brokers register (0g-serving-broker api/inference/const/const.go,
 * 2026). Others may appear: the chain holds any string.
 */
export type ServiceType =
  | 'chatbot'
  | 'text-to-image'
  | 'image-editing'
  | 'speech-to-text'
  | 'embedding'
  | 'audio-generation'
  | 'video-generation'

/**
 * What was delivered, as counted from the backend's own usage report. `seconds` are audio in (speech-to-text, at
 * the input price); `output-seconds` are audio out (text-to-speech, at the output price: 0G bills audio generation
 * on the output dimension only, 0g-serving-broker docs/design/seed-audio-generation.md).
 */
export type Usage =
  | { kind: 'tokens'; input: bigint; output: bigint }
  | { kind: 'images'; count: bigint }
  | { kind: 'seconds'; seconds: bigint }
  | { kind: 'output-seconds'; seconds: bigint }

export type Fee = { inputFee: bigint; outputFee: bigint; fee: bigint }

/** The units billed at the input and at the output price: tokens in and out, images out, audio seconds in or out. */
export function billedUnits(usage: Usage): [input: bigint, output: bigint] {
  switch (usage.kind) {
    case 'tokens':
      return [usage.input, usage.output]
    case 'images':
      return [0n, usage.count]
    case 'seconds':
      return [usage.seconds, 0n]
    case 'output-seconds':
      return [0n, usage.seconds]
  }
}

export function feeOf(usage: Usage, prices: Prices): Fee {
  switch (usage.kind) {
    case 'tokens': {
      const inputFee = usage.input * prices.inputPrice
      const outputFee = usage.output * prices.outputPrice
      return { inputFee, outputFee, fee: inputFee + outputFee }
    }
    case 'images': {
      const outputFee = usage.count * prices.outputPrice
      return { inputFee: 0n, outputFee, fee: outputFee }
    }
    case 'seconds': {
      const inputFee = usage.seconds * prices.inputPrice
      return { inputFee, outputFee: 0n, fee: inputFee }
    }
    case 'output-seconds': {
      const outputFee = usage.seconds * prices.outputPrice
      return { inputFee: 0n, outputFee, fee: outputFee }
    }
  }
}

/** The longest clip one text-to-speech call may produce and be billed for: the 0G broker's max_duration ceiling. */
export const MAX_SPEECH_SECONDS = 120

/**
 * The seconds of audio a text-to-speech request may be billed for, reserved on admission: min(max_duration, 120),
 * or 120 without one (0G broker AudioCreateReserve), in whole seconds since billing rounds up.
 */
export function speechReserveSeconds(body: unknown): bigint {
  const max = body && typeof body === 'object' ? (body as Record<string, unknown>).max_duration : undefined
  const seconds = typeof max === 'number' && Number.isFinite(max) && max > 0 ? Math.min(max, MAX_SPEECH_SECONDS) : 120
  return BigInt(Math.ceil(seconds))
}

/** Whole seconds billed for generated audio: rounded up (0G bills ceil(seconds) × price), at most `cap`. */
export function speechBilledSeconds(seconds: number, cap: bigint = BigInt(MAX_SPEECH_SECONDS)): bigint {
  if (!(seconds > 0)) return 0n
  return BigInt(Math.ceil(Math.min(seconds, Number(cap))))
}

/**
 * Most images one edit may return (OpenAI's images.edit takes n up to 10). The provider cannot read `n` from a
 * multipart upload it streams through unparsed, so an edit reserves this many on admission and bills the images
 * the backend returned, never more than this.
 */
export const MAX_EDIT_IMAGES = 10

/** Longest billable transcription: one bad duration must not drain an account (0G broker caps at 99 h). */
const MAX_BILLABLE_SECONDS = 99 * 3600

/** Whole seconds billed for a duration: rounded, at least 1 for any positive duration, capped. */
export function billableSeconds(seconds: number): bigint | undefined {
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined
  return BigInt(Math.max(1, Math.round(Math.min(seconds, MAX_BILLABLE_SECONDS))))
}

/** The end of the last cue of an SRT or VTT transcript, in seconds (how long the audio was). */
export function subtitleDurationSeconds(text: string): number | undefined {
  let end: number | undefined
  for (const m of text.matchAll(/-->\s*(?:(\d{1,2}):)?(\d{2}):(\d{2})[.,](\d{3})/g)) {
    end = Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4]) / 1000
  }
  return end
}

const int = (v: unknown): bigint | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 ? BigInt(v) : undefined

/**
 * Reads the usage out of a backend's (OpenAI-shaped) response body. Undefined when the body carries no usage the
 * node can account for, in which case nothing is billed.
 */
export function usageFromBody(endpoint: string, body: unknown): Usage | undefined {
  if (!body || typeof body !== 'object') return undefined
  const b = body as Record<string, unknown>
  const u = (b.usage ?? undefined) as Record<string, unknown> | undefined
  if (endpoint === 'images/generations') {
    return Array.isArray(b.data) ? { kind: 'images', count: BigInt(b.data.length) } : undefined
  }
  if (endpoint === 'images/edits') {
    if (!Array.isArray(b.data)) return undefined
    return { kind: 'images', count: BigInt(Math.min(b.data.length, MAX_EDIT_IMAGES)) }
  }
  if (endpoint === 'audio/transcriptions' || endpoint === 'audio/translations') {
    // 0G speech-to-text: {"type":"duration","seconds":N}, token usage, or verbose_json's top-level duration.
    const usageSeconds = u?.type === 'duration' ? billableSeconds(Number(u.seconds)) : undefined
    if (usageSeconds !== undefined) return { kind: 'seconds', seconds: usageSeconds }
    if (u?.type === 'tokens') {
      const input = int(u.input_tokens)
      const output = int(u.output_tokens) ?? 0n
      return input === undefined ? undefined : { kind: 'tokens', input, output }
    }
    const duration = billableSeconds(Number(b.duration))
    return duration === undefined ? undefined : { kind: 'seconds', seconds: duration }
  }
  if (!u) return undefined
  const input = int(u.prompt_tokens) ?? int(u.input_tokens)
  if (input === undefined) return undefined
  const output = int(u.completion_tokens) ?? int(u.output_tokens) ?? 0n
  return { kind: 'tokens', input, output }
}

/**
 * A deliberate over-estimate of a request's fee, for admission before the backend has counted anything: the
 * provider's rule is bytes of the prompt × inputPrice (0G broker ctrl/chatbot.go getInputCount), per image × price
 * for images (MAX_EDIT_IMAGES for an edit, whose `n` is inside a multipart body), at least one second for audio in,
 * and the reserved seconds for audio out.
 */
export function estimateFee(endpoint: string, body: unknown, bodyBytes: number, prices: Prices): bigint {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>
  if (endpoint === 'audio/speech') return speechReserveSeconds(body) * prices.outputPrice
  if (endpoint === 'images/edits' && body === undefined) return BigInt(MAX_EDIT_IMAGES) * prices.outputPrice
  if (endpoint === 'images/generations' || endpoint === 'images/edits') {
    const n = typeof b.n === 'number' && Number.isInteger(b.n) && b.n > 0 ? BigInt(b.n) : 1n
    return n * prices.outputPrice
  }
  if (endpoint === 'audio/transcriptions' || endpoint === 'audio/translations') {
    // 16 kHz 16-bit mono is 32 kB a second: a floor for what a second of audio costs in bytes.
    return BigInt(Math.max(1, Math.ceil(bodyBytes / 32_000))) * prices.inputPrice
  }
  const prompt = b.messages ?? b.prompt ?? b.input
  const bytes = prompt === undefined ? bodyBytes : Buffer.byteLength(JSON.stringify(prompt))
  return BigInt(bytes) * prices.inputPrice
}

/**
 * Usage of a whole (non-streamed) response body: JSON usage, or for a plain-text transcription the duration of
 * its subtitle timeline, or failing that `fallbackSeconds` (an estimate from the upload's size). Speech is billed
 * on its duration: the `audioDuration` header (X-0G-Audio-Duration-Seconds), else measured (WAV, PCM).
 */
export function usageOfResponse(
  endpoint: string,
  contentType: string,
  body: Uint8Array,
  extra: { fallbackSeconds?: bigint; audioDuration?: string | null } = {},
): Usage | undefined {
  if (endpoint === 'audio/speech') {
    const duration = speechDuration({ header: extra.audioDuration, contentType, body })
    return duration && { kind: 'output-seconds', seconds: speechBilledSeconds(duration.seconds) }
  }
  const { fallbackSeconds } = extra
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')
  if (contentType.includes('json')) {
    try {
      return usageFromBody(endpoint, JSON.parse(text))
    } catch {
      return undefined
    }
  }
  if (endpoint.startsWith('audio/')) {
    const seconds = billableSeconds(subtitleDurationSeconds(text) ?? Number.NaN) ?? fallbackSeconds
    return seconds === undefined ? undefined : { kind: 'seconds', seconds }
  }
  return undefined
}
