import { describe, expect, it } from 'vitest'
import { countTokens as devModelTokens } from '../devnet/backends/tokenizer.ts'
import { DatasetError } from './examples.ts'
import { countDatasetTokens, countTokens } from './tokens.ts'

describe('fine-tuning token count (the fee basis)', () => {
  it('counts words, digit runs, symbols and whitespace, a token per started four code points', () => {
    expect(countTokens('')).toBe(0)
    expect(countTokens('Ahoy')).toBe(1)
    expect(countTokens(' sailor')).toBe(2) // " sai" + "lor"
    expect(countTokens('12345')).toBe(2) // "123" + "45"
    expect(countTokens('a, b!')).toBe(4) // "a" "," " b" "!"
    expect(countTokens('東京 🦊')).toBe(2)
  })

  it("agrees with the dev chat model's tokenizer, so the devnet charges what its model counts", () => {
    for (const text of [
      'Hello, world! 2026 is near.',
      'Fair winds and following seas 🌊\n\n  Déjà vu.',
      'x'.repeat(37),
    ]) {
      expect(countTokens(text)).toBe(devModelTokens(text))
    }
  })

  it('counts prompt and completion of every example, whatever the JSON around them', () => {
    const compact = '{"messages":[{"role":"user","content":"Wind?"},{"role":"assistant","content":"Fair winds."}]}'
    const spaced =
      '{ "messages" : [ { "role" : "user" , "content" : "Wind?" } , { "role" : "assistant" , "content" : "Fair winds." } ] }'
    const expected = countTokens('user: Wind?') + countTokens('Fair winds.')
    expect(countDatasetTokens(compact)).toBe(expected)
    expect(countDatasetTokens(spaced)).toBe(expected)
    expect(countDatasetTokens(`${compact}\n{"text": "Ahoy"}\n`)).toBe(expected + 1)
    expect(() => countDatasetTokens('{')).toThrow(DatasetError)
  })
})
