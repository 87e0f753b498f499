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

  it('counts the text of every record once, whatever the JSON around it', () => {
    const compact = '{"messages":[{"role":"user","content":"Wind?"},{"role":"assistant","content":"Fair winds."}]}'
    const spaced =
      '{ "messages" : [ { "role" : "user" , "content" : "Wind?" } , { "role" : "assistant" , "content" : "Fair winds." } ] }'
    const expected = countTokens('user: Wind?\nassistant: Fair winds.')
    expect(countDatasetTokens(compact)).toBe(expected)
    expect(countDatasetTokens(spaced)).toBe(expected)
    expect(countDatasetTokens(`${compact}\n{"text": "Ahoy"}\n`)).toBe(expected + 1)
    // Two answers in one conversation: the question is counted once, not once per answer.
    const twoTurns = JSON.stringify({
      messages: [
        { role: 'user', content: 'Wind?' },
        { role: 'assistant', content: 'Fair winds.' },
        { role: 'assistant', content: 'Hoist the sails.' },
      ],
    })
    expect(countDatasetTokens(twoTurns)).toBe(
      countTokens('user: Wind?\nassistant: Fair winds.\nassistant: Hoist the sails.'),
    )
    expect(countDatasetTokens('{"instruction": "Greet", "input": "a sailor", "output": "Ahoy"}')).toBe(
      countTokens('Greet\n\na sailor\nAhoy'),
    )
    expect(() => countDatasetTokens('{')).toThrow(DatasetError)
  })
})
