import type { Rng } from './rng.ts'
import { countTokens } from './tokenizer.ts'

/**
 * The words the dev chat model writes with. Some are accented or not Latin, and a few are emoji, so that every
 * consumer of the output meets multi-byte UTF-8 (2, 3 and 4 bytes), including code points cut across chunks.
 */
// biome-ignore format: a word list reads better packed
export const VOCABULARY = [
  'the', 'a', 'network', 'provider', 'ledger', 'token', 'stream', 'block', 'signal', 'garden', 'river', 'lantern',
  'quiet', 'bright', 'careful', 'honest', 'small', 'distant', 'green', 'silver', 'patient', 'simple', 'measured',
  'walks', 'carries', 'counts', 'settles', 'returns', 'listens', 'builds', 'verifies', 'remembers', 'answers',
  'under', 'over', 'beside', 'through', 'with', 'without', 'and', 'or', 'because', 'while', 'every', 'each',
  'café', 'naïve', 'résumé', 'über', 'déjà', 'jalapeño', 'smörgåsbord', 'façade', 'piñata', 'Zürich', 'São',
  'crème', 'brûlée', 'fiancée', 'Ångström', 'niño', 'garçon', 'señora', 'Straße', 'ελπίδα', 'мост',
  '東京', '木漏れ日', '🦊', '✨', '🚀', '🌊',
] as const

const ENDINGS = ['.', '.', '.', '!', '?'] as const

function capitalize(word: string): string {
  const [first = '', ...rest] = Array.from(word)
  return first.toLocaleUpperCase('en') + rest.join('')
}

/** Picks the next word: the dev chat model picks uniformly from VOCABULARY; a loaded adapter from its own model. */
export type WordPicker = (rng: Rng) => string

const uniformWord: WordPicker = (rng) => rng.pick(VOCABULARY)

function sentence(rng: Rng, pickWord: WordPicker): string {
  const length = 4 + rng.int(8)
  const words: string[] = []
  for (let i = 0; i < length; i++) {
    const word = pickWord(rng)
    words.push(i === 0 ? capitalize(word) : word)
    if (i < length - 1 && rng.next() < 0.12) words.push(',')
  }
  return words.join(' ').replaceAll(' ,', ',') + rng.pick(ENDINGS)
}

/** Deterministic word salad of whole sentences, at least `minTokens` tokens long. */
export function writeProse(rng: Rng, minTokens: number, pickWord: WordPicker = uniformWord): string {
  let text = sentence(rng, pickWord)
  while (countTokens(text) < minTokens) text += ` ${sentence(rng, pickWord)}`
  return text
}

/** A few words, for string values in generated JSON. */
export function phrase(rng: Rng, words: number): string {
  return Array.from({ length: words }, () => rng.pick(VOCABULARY)).join(' ')
}
