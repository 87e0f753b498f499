import type { IncomingHttpHeaders } from 'node:http'
import { AUDIO_DURATION_HEADER, durationHeaderSeconds, FEE_HEADER } from '../billing/audio-duration.ts'
import { feeOf, type Prices, type Usage, usageOfResponse } from '../billing/pricing.ts'

/** What a speech answer carries beside its audio: its usage for the ledger, and the headers the client gets. */
export type SpeechAnswer = { usage: Usage | undefined; headers: Record<string, string> }

const one = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name.toLowerCase()]
  return typeof value === 'string' ? value : undefined
}

/**
 * A text-to-speech answer is raw audio: its billed duration and fee come in the provider's headers
 * (X-0G-Audio-Duration-Seconds, X-0G-Fee), not in a usage block. They are passed on to the client, with the fee
 * the gateway records for the call in x-zg-fee (its own reckoning: the duration × the service's on-chain price).
 */
export function speechAnswer(
  upstream: IncomingHttpHeaders,
  contentType: string,
  bytes: Uint8Array,
  prices: Prices,
): SpeechAnswer {
  const duration = one(upstream, AUDIO_DURATION_HEADER)
  const usage = usageOfResponse('audio/speech', contentType, bytes, { audioDuration: duration })
  const headers: Record<string, string> = {}
  // Relayed only when they are what they claim to be: a number of seconds, a whole number of neuron.
  if (durationHeaderSeconds(duration) !== undefined) headers['x-0g-audio-duration-seconds'] = duration!.trim()
  const fee = one(upstream, FEE_HEADER)
  if (fee !== undefined && /^\d{1,78}$/.test(fee.trim())) headers['x-0g-fee'] = fee.trim()
  if (usage) headers['x-zg-fee'] = feeOf(usage, prices).fee.toString()
  return { usage, headers }
}
