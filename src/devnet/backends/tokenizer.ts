import { fnv1a } from './rng.ts'

/**
 * The dev models' tokenizer. Deterministic and lossless: the tokens of a text concatenate back to exactly that text.
 *
 * Pre-tokenization follows the GPT-2 idea (a word keeps its leading space; digits go in runs of up to three; runs of
 * other symbols and of whitespace stay together), then any piece longer than four code points is cut into pieces of
 * at most four, left to right. Cutting by code point keeps every token valid UTF-8. The pattern has no look-ahead
 * and pieces are cut from the left, so every prefix made of whole tokens re-tokenizes into the same tokens: a
 * completion cut at `max_tokens` counts exactly `max_tokens` tokens.
 *
 * The chat template's markers are special tokens (one token each), as in real chat models.
 */
const PRE_TOKEN = /<\|im_start\|>|<\|im_end\|>| ?[\p{L}\p{M}]+| ?\p{N}{1,3}| ?[^\s\p{L}\p{M}\p{N}]+|\s+/gu

const MAX_PIECE_CODE_POINTS = 4

export const SPECIAL_TOKENS = ['<|im_start|>', '<|im_end|>'] as const

/** Size of the hashed id space (see tokenId). */
export const VOCAB_SIZE = 1 << 17

export function tokenize(text: string): string[] {
  const tokens: string[] = []
  for (const [piece] of text.matchAll(PRE_TOKEN)) {
    if ((SPECIAL_TOKENS as readonly string[]).includes(piece)) {
      tokens.push(piece)
      continue
    }
    const codePoints = Array.from(piece)
    for (let i = 0; i < codePoints.length; i += MAX_PIECE_CODE_POINTS) {
      tokens.push(codePoints.slice(i, i + MAX_PIECE_CODE_POINTS).join(''))
    }
  }
  return tokens
}

export function countTokens(text: string): number {
  return tokenize(text).length
}

/**
 * A token's id. The dev tokenizer has no trained vocabulary, so ids are hashed (the "hashing trick"): stable across
 * runs and processes, with rare collisions that do not matter for a dev model.
 */
export function tokenId(token: string): number {
  return fnv1a(token) % VOCAB_SIZE
}
