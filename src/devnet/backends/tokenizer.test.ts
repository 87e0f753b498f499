import { describe, expect, it } from 'vitest'
import { countTokens, tokenId, tokenize, VOCAB_SIZE } from './tokenizer.ts'

const SAMPLE = 'Hello, wörld! Smörgåsbord costs 12345 coins 🦊✨ at the café.\n\n  <|im_start|>user\nhi<|im_end|>'

describe('tokenize', () => {
  it('is lossless', () => {
    expect(tokenize(SAMPLE).join('')).toBe(SAMPLE)
  })

  it('keeps leading spaces on words, cuts long words into pieces of at most four code points', () => {
    expect(tokenize('Hello smörgåsbord')).toEqual(['Hell', 'o', ' smö', 'rgås', 'bord'])
    for (const token of tokenize(SAMPLE)) {
      if (!token.startsWith('<|')) expect(Array.from(token).length).toBeLessThanOrEqual(4)
    }
  })

  it('never splits a code point, so every token is valid UTF-8', () => {
    for (const token of tokenize('🦊🦊🦊🦊🦊 東京木漏れ日')) {
      expect(Buffer.from(token, 'utf8').toString('utf8')).toBe(token)
      expect(token).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/)
    }
  })

  it('counts the chat markers as one token each', () => {
    expect(tokenize('<|im_start|>user\n')).toEqual(['<|im_start|>', 'user', '\n'])
  })

  it('re-tokenizes every whole-token prefix into the same tokens', () => {
    const tokens = tokenize(SAMPLE)
    for (let n = 0; n <= tokens.length; n++) {
      expect(tokenize(tokens.slice(0, n).join(''))).toEqual(tokens.slice(0, n))
    }
  })

  it('counts and ids tokens stably', () => {
    expect(countTokens(SAMPLE)).toBe(tokenize(SAMPLE).length)
    expect(countTokens('')).toBe(0)
    expect(tokenId(' café')).toBe(tokenId(' café'))
    expect(tokenId(' café')).toBeLessThan(VOCAB_SIZE)
  })
})
