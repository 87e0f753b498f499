import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { format0G } from '../chain/units.ts'
import { usageObjectSpan, usageOfAnswer, withUsageCost } from './fee-annotation.ts'
import { SseUsageTap } from './sse-usage-tap.ts'

const ONE_0G = 10n ** 18n

describe('format0G', () => {
  it('writes exact decimals of 0G, trailing zeros trimmed', () => {
    expect(format0G(0n)).toBe('0')
    expect(format0G(1n)).toBe('0.000000000000000001')
    expect(format0G(1_230_000_000_000n)).toBe('0.00000123')
    expect(format0G(ONE_0G)).toBe('1')
    expect(format0G(12n * ONE_0G + 5n * 10n ** 17n)).toBe('12.5')
    expect(format0G(123_456_789_012_345_678_901_234_567n)).toBe('123456789.012345678901234567')
    expect(format0G(-5n)).toBe('-0.000000000000000005')
  })

  it('round-trips every amount through its decimal string, with no float on the way', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), (n) => {
        const [whole, fraction = ''] = format0G(n).split('.')
        expect(BigInt(whole!) * ONE_0G + BigInt(fraction.padEnd(18, '0'))).toBe(n)
        expect(format0G(n)).toMatch(/^\d+(\.\d*[1-9])?$/)
      }),
    )
  })
})

describe('usage.cost in a JSON answer', () => {
  const body = (usage: string) =>
    Buffer.from(`{"id":"c1","choices":[{"message":{"content":"say \\"usage\\": {x}"}}],"usage":${usage}}`)

  it('finds the usage object and adds cost as its first member, the other bytes untouched', () => {
    const b = body('{"prompt_tokens":5,"completion_tokens":2,"details":{"a":1}}')
    const span = usageObjectSpan(b)!
    expect(b.subarray(span.start, span.end + 1).toString()).toBe(
      '{"prompt_tokens":5,"completion_tokens":2,"details":{"a":1}}',
    )
    const out = JSON.parse(Buffer.from(withUsageCost(b, 1_230_000_000_000n)).toString())
    expect(out.usage).toEqual({ cost: 0.00000123, prompt_tokens: 5, completion_tokens: 2, details: { a: 1 } })
    expect(out.choices[0].message.content).toBe('say "usage": {x}')
  })

  it('writes the cost as a JSON number from the exact decimal', () => {
    const out = Buffer.from(withUsageCost(body('{ }'), 123_000_000_000_000_000_001n)).toString()
    expect(out).toContain('"usage":{"cost":123.000000000000000001 }')
  })

  it('leaves a body without usage as it is', () => {
    const b = Buffer.from('{"id":"x","usage":null}')
    expect(withUsageCost(b, 5n)).toBe(b)
  })

  it('reads the usage of a token answer from its usage object alone', () => {
    const b = body('{"prompt_tokens":5,"completion_tokens":2}')
    expect(usageOfAnswer('chat/completions', 'application/json', b)).toEqual({ kind: 'tokens', input: 5n, output: 2n })
    expect(usageOfAnswer('chat/completions', 'application/json', Buffer.from('{"usage":null}'))).toBeUndefined()
    expect(usageOfAnswer('images/generations', 'application/json', Buffer.from('{"data":[{},{}]}'))).toEqual({
      kind: 'images',
      count: 2n,
    })
  })
})

describe('usage.cost in a stream', () => {
  const usage = `data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n`
  const done = 'data: [DONE]\n\n'

  it('prices the usage chunk shown to the client, and holds [DONE] back when asked', () => {
    const tap = new SseUsageTap({ dropUsageChunk: false, feeOf: () => 7n, holdDone: true })
    const out = tap.push(Buffer.from(`data: {"choices":[{"delta":{}}]}\n\n${usage}${done}`)).toString()
    expect(out).toContain('"usage":{"cost":0.000000000000000007,"prompt_tokens":5')
    expect(out).not.toContain('[DONE]')
    expect(tap.done).toBe(true)
    expect(tap.heldDone?.toString()).toBe(done)
  })

  it('still drops the usage chunk for a client that did not ask', () => {
    const tap = new SseUsageTap({ dropUsageChunk: true, holdDone: false })
    expect(tap.push(Buffer.from(usage + done)).toString()).toBe(done)
    expect(tap.usage).toEqual({ prompt_tokens: 5, completion_tokens: 2 })
  })
})
