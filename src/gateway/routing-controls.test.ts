import { describe, expect, it } from 'vitest'
import { GatewayError } from './http/openai-error.ts'
import { routingControlsOf } from './routing-controls.ts'

const PROVIDER = '0x1111111111111111111111111111111111111111'
const headersOf = (h: Record<string, string>) => (name: string) => h[name]

function badValue(h: Record<string, string>): GatewayError {
  try {
    routingControlsOf(headersOf(h))
  } catch (err) {
    return err as GatewayError
  }
  throw new Error('no error')
}

describe('routingControlsOf', () => {
  it('asks nothing without headers or defaults, nor for empty headers and allowed fallbacks', () => {
    expect(routingControlsOf(headersOf({}))).toBeUndefined()
    expect(routingControlsOf(headersOf({ 'x-0g-provider-sort': ' ' }), {})).toBeUndefined()
    expect(routingControlsOf(headersOf({ 'x-0g-provider-allow-fallbacks': 'TRUE' }))).toBeUndefined()
  })

  it("reads 0G Router's headers", () => {
    expect(
      routingControlsOf(
        headersOf({
          'x-0g-provider-address': PROVIDER,
          'x-0g-provider-sort': 'Latency',
          'x-0g-provider-allow-fallbacks': 'false',
          'x-0g-provider-max-price-prompt': '1000000000',
          'x-0g-provider-max-price-completion': '2000000000',
        }),
      ),
    ).toEqual({
      provider: '0x1111111111111111111111111111111111111111',
      sort: 'latency',
      allowFallbacks: false,
      maxPricePrompt: 1_000_000_000n,
      maxPriceCompletion: 2_000_000_000n,
    })
    expect(
      routingControlsOf(headersOf({ 'x-0g-provider-address': PROVIDER.toUpperCase().replace('0X', '0x') })),
    ).toMatchObject({ provider: PROVIDER, allowFallbacks: true })
  })

  it("starts from a key's defaults: headers override them, and a price ceiling can only go lower", () => {
    const key = { sort: 'price' as const, allowFallbacks: false, maxPricePrompt: 100n }
    expect(routingControlsOf(headersOf({}), key)).toEqual(key)
    expect(
      routingControlsOf(
        headersOf({
          'x-0g-provider-sort': 'throughput',
          'x-0g-provider-allow-fallbacks': 'true',
          'x-0g-provider-max-price-prompt': '500',
        }),
        key,
      ),
    ).toEqual({ sort: 'throughput', allowFallbacks: true, maxPricePrompt: 100n })
    expect(routingControlsOf(headersOf({ 'x-0g-provider-max-price-prompt': '50' }), key)).toMatchObject({
      maxPricePrompt: 50n,
    })
  })

  it('answers a 400 naming the header it cannot read', () => {
    const cases: Array<[string, string]> = [
      ['x-0g-provider-address', '0x1234'],
      ['x-0g-provider-sort', 'fastest'],
      ['x-0g-provider-allow-fallbacks', 'yes'],
      ['x-0g-provider-max-price-prompt', '1.5'],
      ['x-0g-provider-max-price-completion', '-1'],
      ['x-0g-provider-max-price-prompt', '1'.repeat(79)],
    ]
    for (const [name, value] of cases) {
      const err = badValue({ [name]: value })
      expect(err).toBeInstanceOf(GatewayError)
      expect(err.toJSON().error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_header', param: name })
      expect(err.status).toBe(400)
    }
  })
})
