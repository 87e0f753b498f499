import { describe, expect, it } from 'vitest'
import { SseUsageTap } from './sse-usage-tap.ts'

const chunk = (content: string) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }], usage: null })}\n\n`
const usage = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`
const stream = chunk('Straße ') + chunk('🦊') + usage + 'data: [DONE]\n\n'

/** Feeds `bytes` to a tap in pieces of `size` bytes, as TCP might deliver them. */
function feed(tap: SseUsageTap, bytes: Buffer, size: number): Buffer {
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) out.push(tap.push(bytes.subarray(i, i + size)))
  out.push(tap.flush())
  return Buffer.concat(out)
}

describe('SseUsageTap', () => {
  it('relays every byte unchanged, whatever the split (multi-byte characters cut across reads included)', () => {
    const bytes = Buffer.from(stream)
    for (const size of [1, 2, 3, 5, 7, 64, bytes.length]) {
      const tap = new SseUsageTap({ dropUsageChunk: false })
      expect(feed(tap, bytes, size)).toEqual(bytes)
      expect(tap.usage).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })
      expect(tap.done).toBe(true)
    }
  })

  it('drops the usage-only chunk when the client did not ask for it, and still captures the usage', () => {
    const tap = new SseUsageTap({ dropUsageChunk: true })
    const out = feed(tap, Buffer.from(stream), 4).toString()
    expect(out).toBe(chunk('Straße ') + chunk('🦊') + 'data: [DONE]\n\n')
    expect(tap.usage?.completion_tokens).toBe(2)
  })

  it('emits only complete events, holding a partial one back', () => {
    const tap = new SseUsageTap({ dropUsageChunk: false })
    const bytes = Buffer.from(chunk('a') + chunk('b'))
    const first = tap.push(bytes.subarray(0, Buffer.byteLength(chunk('a')) + 5))
    expect(first.toString()).toBe(chunk('a'))
    expect(tap.push(bytes.subarray(first.length + 5)).toString()).toBe(chunk('b'))
  })

  it('notices error events and a missing [DONE]', () => {
    const tap = new SseUsageTap({ dropUsageChunk: false })
    tap.push(
      Buffer.from(
        `${chunk('x')}data: {"error":{"message":"boom","type":"api_error","param":null,"code":"upstream_error"}}\n\n`,
      ),
    )
    expect(tap.errored).toBe(true)
    expect(tap.done).toBe(false)
  })
})
