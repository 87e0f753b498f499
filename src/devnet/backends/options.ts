export type DevBackendOptions = {
  /** Streaming pace: the wait between two tokens, in ms (default 0). Non-streamed answers take as long in total. */
  tokenDelayMs?: number
  /** The wait before the first token, in ms (default 0). */
  firstTokenDelayMs?: number
  /** The chat and embedding models' context length, in tokens (default 8192). */
  maxContextTokens?: number
  /**
   * The text-to-speech engine: espeak-ng when it can be run, else tones (`auto`, the default); or one of them
   * forced (`espeak-ng` answers 503 when it cannot be run).
   */
  ttsEngine?: 'auto' | 'espeak-ng' | 'tone'
  /** The espeak-ng executable (default `espeak-ng`, looked up on PATH). */
  espeakCommand?: string
}

export type DevBackendConfig = Required<DevBackendOptions>

export function resolveOptions(opts: DevBackendOptions = {}): DevBackendConfig {
  return {
    tokenDelayMs: opts.tokenDelayMs ?? 0,
    firstTokenDelayMs: opts.firstTokenDelayMs ?? 0,
    maxContextTokens: opts.maxContextTokens ?? 8192,
    ttsEngine: opts.ttsEngine ?? 'auto',
    espeakCommand: opts.espeakCommand ?? 'espeak-ng',
  }
}
