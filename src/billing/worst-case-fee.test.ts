import { describe, expect, it } from 'vitest'
import { COMPLETIONS_DEFAULT_MAX_TOKENS, DEFAULT_MAX_OUTPUT_TOKENS, worstCaseFee } from './worst-case-fee.ts'

const prices = { inputPrice: 1n, outputPrice: 1000n }
const messages = [{ role: 'user', content: 'hi' }]
const input = BigInt(JSON.stringify(messages).length)

describe('worstCaseFee', () => {
  it('adds the stated output cap × n at the output price to the input estimate', () => {
    expect(worstCaseFee('chat/completions', { messages, max_tokens: 10, n: 3 }, 0, prices)).toBe(input + 30_000n)
    // vLLM reads max_completion_tokens first.
    expect(worstCaseFee('chat/completions', { messages, max_completion_tokens: 5, max_tokens: 10 }, 0, prices)).toBe(
      input + 5_000n,
    )
  })

  it("holds a chat call without a cap to what bounds it, and a completion to the API's own 16", () => {
    expect(worstCaseFee('chat/completions', { messages }, 0, prices)).toBe(input + DEFAULT_MAX_OUTPUT_TOKENS * 1000n)
    expect(worstCaseFee('chat/completions', { messages }, 0, prices, 8192n)).toBe(input + 8_192_000n)
    const prompt = { prompt: 'x' }
    expect(worstCaseFee('completions', prompt, 0, prices, 8192n)).toBe(3n + COMPLETIONS_DEFAULT_MAX_TOKENS * 1000n)
  })

  it('counts every prompt of a batched completion, but a token list as one prompt', () => {
    const batch = { prompt: ['a', 'b', 'c'], max_tokens: 10, n: 2 }
    expect(worstCaseFee('completions', batch, 0, prices)).toBe(BigInt(JSON.stringify(batch.prompt).length) + 60_000n)
    const tokens = { prompt: [1, 2, 3], max_tokens: 10 }
    expect(worstCaseFee('completions', tokens, 0, prices)).toBe(BigInt(JSON.stringify(tokens.prompt).length) + 10_000n)
  })

  it('keeps the estimate of other endpoints', () => {
    expect(worstCaseFee('images/generations', { n: 2 }, 0, prices)).toBe(2000n)
    expect(worstCaseFee('embeddings', { input: 'abc', max_tokens: 10 }, 0, prices)).toBe(5n)
  })
})
