/**
 * How long the gateway waits on a provider, each ending in an OpenAI-shaped error. A stream's first byte is its
 * headers; a non-streamed answer's first byte comes with the whole answer, so it waits until the total deadline.
 */
export type UpstreamTimeouts = {
  /** TCP (and TLS) connect to the provider. */
  connectMs: number
  /** A stream's response headers; past it the call fails over to the next provider. */
  firstByteMs: number
  /** The whole call, failovers included, until the first byte reaches the client (a non-streamed answer: whole). */
  totalMs: number
  /** The longest silence between two chunks of a stream. */
  idleMs: number
}

/** What the gateway reads from a provider at most: anything larger ends the call cleanly, memory returned. */
export type UpstreamLimits = {
  /** A non-streamed answer (JSON, audio, subtitles). */
  maxBodyBytes: number
  /** A whole stream. */
  maxStreamBytes: number
  /** One line of a stream (an SSE event's data). */
  maxSseLineBytes: number
  /** An error body read to tell the client why a provider refused. */
  maxErrorBytes: number
}

/** A key's own timeouts (first byte, total, idle) over the gateway's. */
export type KeyTimeouts = Partial<Pick<UpstreamTimeouts, 'firstByteMs' | 'totalMs' | 'idleMs'>>

/** The timeouts of one call: the gateway's, with its key's where it has them. */
export function callTimeouts(gateway: UpstreamTimeouts, key: KeyTimeouts | undefined): UpstreamTimeouts {
  return key ? { ...gateway, ...key } : gateway
}

export const DEFAULT_TIMEOUTS: UpstreamTimeouts = {
  connectMs: 10_000,
  firstByteMs: 30_000,
  totalMs: 300_000,
  idleMs: 60_000,
}

export const DEFAULT_LIMITS: UpstreamLimits = {
  // Four 1024² images as base64 PNG are about 8 MB; a 25 MB upload's transcript is far less.
  maxBodyBytes: 32 * 1024 * 1024,
  maxStreamBytes: 64 * 1024 * 1024,
  maxSseLineBytes: 4 * 1024 * 1024,
  maxErrorBytes: 64 * 1024,
}
