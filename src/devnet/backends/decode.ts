import { tokenize } from './tokenizer.ts'

export type FinishReason = 'stop' | 'length'

/** What a dev model emits for one choice: the content as streamed pieces, and the true token count. */
export type Decoded = {
  /** Concatenated, exactly the content. One piece per streamed chunk; most are one token each. */
  pieces: string[]
  /** Tokens generated, including any that a stop string swallowed. */
  completionTokens: number
  finishReason: FinishReason
  /** The stop string that ended the output, as vLLM reports it in `stop_reason`. */
  stopString: string | null
}

/**
 * Emits `text` token by token as a model would: at most `maxTokens` tokens (finish "length"), ending early before the
 * first stop string (finish "stop", the stop string excluded from the content, as in OpenAI and vLLM).
 */
export function decode(text: string, maxTokens: number, stop: readonly string[] = []): Decoded {
  const tokens = tokenize(text)
  const stops = stop.filter((s) => s.length > 0)
  const longestStop = Math.max(0, ...stops.map((s) => s.length))
  const pieces: string[] = []
  let content = ''
  for (let i = 0; i < tokens.length; i++) {
    if (i === maxTokens) return { pieces, completionTokens: i, finishReason: 'length', stopString: null }
    const token = tokens[i]!
    const before = content.length
    content += token
    pieces.push(token)
    // A stop string can straddle earlier tokens, so look back by its length.
    const hit = firstStop(content, stops, Math.max(0, before - longestStop + 1))
    if (hit) {
      cutPieces(pieces, hit.index)
      return { pieces, completionTokens: i + 1, finishReason: 'stop', stopString: hit.stop }
    }
  }
  return { pieces, completionTokens: tokens.length, finishReason: 'stop', stopString: null }
}

function firstStop(text: string, stops: readonly string[], from: number): { index: number; stop: string } | undefined {
  let best: { index: number; stop: string } | undefined
  for (const stop of stops) {
    const index = text.indexOf(stop, from)
    if (index >= 0 && (!best || index < best.index)) best = { index, stop }
  }
  return best
}

/** Keeps only the first `length` characters of the pieces: the stop string and what follows it go. */
function cutPieces(pieces: string[], length: number): void {
  let seen = 0
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!
    if (seen + piece.length > length) {
      const kept = piece.slice(0, length - seen)
      pieces.length = i
      if (kept) pieces.push(kept)
      return
    }
    seen += piece.length
  }
}
