import { readTrainingTexts } from './examples.ts'

/**
 * The fee basis of a fine-tuning task: the tokens of its training text, counted the same way by the gateway (to
 * pick and fund a provider) and the provider (to charge tokens × pricePerToken × epochs).
 *
 * Counted over the text that is trained on, each record's once (examples.ts readTrainingTexts: a conversation's
 * `role: content` lines, an instruction's prompt and output, a text) — not over the JSON around it, so formatting
 * and whitespace between fields cost nothing. The count is deterministic and documented rather
 * than a real model's BPE (a provider serving several base models cannot charge by each one's vocabulary): text is
 * split GPT-2 style into words with their leading space, runs of up to three digits, runs of other symbols and runs
 * of whitespace, and a piece counts one token per started four code points. That is the dev chat model's own
 * tokenization (src/devnet/backends/tokenizer.ts), so on the devnet a dataset costs what the dev model would count.
 */
const PIECE = / ?[\p{L}\p{M}]+| ?\p{N}{1,3}| ?[^\s\p{L}\p{M}\p{N}]+|\s+/gu

const CODE_POINTS_PER_TOKEN = 4

export function countTokens(text: string): number {
  let tokens = 0
  for (const [piece] of text.matchAll(PIECE)) {
    let codePoints = 0
    for (const _ of piece) codePoints++
    tokens += Math.ceil(codePoints / CODE_POINTS_PER_TOKEN)
  }
  return tokens
}

/** The tokens of a dataset in any of 0G's formats; throws DatasetError when it cannot be read. */
export function countDatasetTokens(text: string): number {
  let tokens = 0
  for (const record of readTrainingTexts(text)) tokens += countTokens(record)
  return tokens
}
