/**
 * 0G fees, in neuron. Prices on-chain are neuron per unit: per token for chat, completions and embeddings; per
 * image (outputPrice) for images; per second (inputPrice) for speech-to-text in duration mode
 * (0g-protocol.md §2 "Units", §3.3 extractors).
 */
export type Prices = { inputPrice: bigint; outputPrice: bigint }

/** The 0G service types (on-chain `serviceType`). */
export type ServiceType = 'chatbot' | 'text-to-image' | 'image-editing' | 'speech-to-text' | 'embedding'

/** What was delivered, as counted from the backend's own usage report. */
export type Usage =
  | { kind: 'tokens'; input: bigint; output: bigint }
  | { kind: 'images'; count: bigint }
  | { kind: 'seconds'; seconds: bigint }

export type Fee = { inputFee: bigint; outputFee: bigint; fee: bigint }

/** The units billed at the input and at the output price: tokens in and out, images out, audio seconds in. */
export function billedUnits(usage: Usage): [input: bigint, output: bigint] {
  switch (usage.kind) {
    case 'tokens':
      return [usage.input, usage.output]
    case 'images':
      return [0n, usage.count]
    case 'seconds':
      return [usage.seconds, 0n]
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
  }
}

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
  if (endpoint === 'images/generations' || endpoint === 'images/edits') {
    return Array.isArray(b.data) ? { kind: 'images', count: BigInt(b.data.length) } : undefined
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
 * for images, and at least one second for audio.
 */
export function estimateFee(endpoint: string, body: unknown, bodyBytes: number, prices: Prices): bigint {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>
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
 * its subtitle timeline, or failing that `fallbackSeconds` (an estimate from the upload's size).
 */
export function usageOfResponse(
  endpoint: string,
  contentType: string,
  body: Uint8Array,
  fallbackSeconds?: bigint,
): Usage | undefined {
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
