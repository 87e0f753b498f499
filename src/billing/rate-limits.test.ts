import { describe, expect, it } from 'vitest'
import { RateLimiter } from './rate-limits.ts'

describe('RateLimiter', () => {
  it('refuses past the RPM with a Retry-After within the minute, and admits again after it', () => {
    let now = 1_000_000
    const limiter = new RateLimiter(() => now)
    for (let i = 0; i < 3; i++) expect(limiter.admit('k', { rpm: 3 }, 10).ok).toBe(true)
    now += 20_000
    const refused = limiter.admit('k', { rpm: 3 }, 10)
    expect(refused.ok).toBe(false)
    expect(refused.retryAfter).toBe(40)
    expect(refused.headers).toMatchObject({
      'x-ratelimit-limit-requests': '3',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '40s',
    })
    expect(limiter.admit('other', { rpm: 3 }, 10).ok).toBe(true)
    now += 40_000
    expect(limiter.admit('k', { rpm: 3 }, 10).headers['x-ratelimit-remaining-requests']).toBe('2')
  })

  it('checks TPM with the estimate, charges the real count after, and may go negative', () => {
    const now = 5_000
    const limiter = new RateLimiter(() => now)
    const first = limiter.admit('k', { tpm: 100 }, 500)
    expect(first.ok).toBe(true) // an empty window admits even an estimate past the limit
    limiter.charge('k', 130)
    const second = limiter.admit('k', { tpm: 100 }, 1)
    expect(second.ok).toBe(false)
    expect(second.headers['x-ratelimit-remaining-tokens']).toBe('-30')
    expect(second.retryAfter).toBeGreaterThan(0)
    expect(second.retryAfter).toBeLessThanOrEqual(60)
  })

  it('admits under the TPM when estimate fits', () => {
    const limiter = new RateLimiter(() => 0)
    limiter.admit('k', { tpm: 100 }, 10)
    limiter.charge('k', 40)
    expect(limiter.admit('k', { tpm: 100 }, 60).ok).toBe(true)
    expect(limiter.admit('k', { tpm: 100 }, 61).ok).toBe(false)
  })
})
